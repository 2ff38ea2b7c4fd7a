//! The paper's numbers, in one place: LiveCodeBench pass@1 from "The Valley of Code Reasoning"
//! (He, Shafique, Kumar, Mackey, Rajani; arXiv 2510.06101, 2025).
//!
//! Source: the two result tables of the paper as transcribed in docs/design.md section 1 — LCB pass@1 of
//! Qwen2.5-7B-Instruct and Llama-3.1-8B-Instruct by training size (base, 1K, 10K, 30K: the paper's
//! data-quantity scaling results, RQ1, its "valley" figure), and Qwen2.5-7B-Instruct fine-tuned on
//! added data (correct 6K, incorrect 6K, hard 4K, easy 4K) from the instruct model and from the 30K
//! checkpoint (RQ2 correctness and RQ3 difficulty). The table and figure numbers inside the paper
//! were not re-checked offline; check them against the PDF before quoting a number by its table.
//!
//! Every paper number is a *series*: points by data size where size 0 is the starting model (the
//! base model for the scaling table; the instruct model or the 30K checkpoint for the added-data
//! table), so mirrored arms plot and tabulate the paper beside ours in the same way.

use serde::{Deserialize, Serialize};

/// Which table of the paper an experiment mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaperTable {
    /// LCB pass@1 by training size (base, 1K, 10K, 30K) for the two students.
    SizeScaling,
    /// LCB pass@1 after adding 4K–6K examples of one kind, from the instruct model or from the 30K
    /// checkpoint (Qwen2.5-7B-Instruct).
    AddedData,
}

impl PaperTable {
    /// How the report names the table.
    pub fn title(self) -> &'static str {
        match self {
            PaperTable::SizeScaling => "LCB pass@1 by training size (base, 1K, 10K, 30K)",
            PaperTable::AddedData => {
                "LCB pass@1 with added data, from the instruct model or the 30K checkpoint (Qwen2.5-7B-Instruct)"
            }
        }
    }
}

/// One series of the paper: a label and its (size, LCB pass@1) points; size 0 is the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperSeries {
    /// The id an experiment's `mirrors.arms` names (e.g. `qwen2.5-7b-instruct`).
    pub id: &'static str,
    /// The table it comes from.
    pub table: PaperTable,
    /// A readable label.
    pub label: &'static str,
    /// (training size, LCB pass@1); size 0 is the starting model.
    pub points: &'static [(u64, f64)],
}

/// Citation printed under every table and plot that shows paper numbers.
pub const CITATION: &str = "He et al., \"The Valley of Code Reasoning\", arXiv 2510.06101 (2025)";

// arXiv 2510.06101, scaling results (LCB pass@1 by data size; docs/design.md section 1, first table):
//   model                  base   1K     10K    30K
//   Qwen2.5-7B-Instruct    0.127  0.055  0.188  0.264
//   Llama-3.1-8B-Instruct  0.103  0.019  0.150  0.299
// arXiv 2510.06101, added-data results (Qwen2.5-7B-Instruct; docs/design.md section 1, second table):
//   added data      from instruct  from the 30K checkpoint
//   none            0.126          0.264
//   correct 6K      0.185          0.347
//   incorrect 6K    0.182          0.350
//   hard 4K         0.137          0.296
//   easy 4K         0.179          0.352
// The "none" row is size 0 of every added-data series (the starting model's own score). Note the
// base Qwen2.5 score differs between the two tables (0.127 and 0.126) as it does in the paper.
const SERIES: &[PaperSeries] = &[
    PaperSeries {
        id: "qwen2.5-7b-instruct",
        table: PaperTable::SizeScaling,
        label: "Qwen2.5-7B-Instruct",
        points: &[(0, 0.127), (1_000, 0.055), (10_000, 0.188), (30_000, 0.264)],
    },
    PaperSeries {
        id: "llama-3.1-8b-instruct",
        table: PaperTable::SizeScaling,
        label: "Llama-3.1-8B-Instruct",
        points: &[(0, 0.103), (1_000, 0.019), (10_000, 0.150), (30_000, 0.299)],
    },
    PaperSeries {
        id: "correct-6k/from-instruct",
        table: PaperTable::AddedData,
        label: "correct 6K, from instruct",
        points: &[(0, 0.126), (6_000, 0.185)],
    },
    PaperSeries {
        id: "incorrect-6k/from-instruct",
        table: PaperTable::AddedData,
        label: "incorrect 6K, from instruct",
        points: &[(0, 0.126), (6_000, 0.182)],
    },
    PaperSeries {
        id: "hard-4k/from-instruct",
        table: PaperTable::AddedData,
        label: "hard 4K, from instruct",
        points: &[(0, 0.126), (4_000, 0.137)],
    },
    PaperSeries {
        id: "easy-4k/from-instruct",
        table: PaperTable::AddedData,
        label: "easy 4K, from instruct",
        points: &[(0, 0.126), (4_000, 0.179)],
    },
    PaperSeries {
        id: "correct-6k/from-30k",
        table: PaperTable::AddedData,
        label: "correct 6K, from the 30K checkpoint",
        points: &[(0, 0.264), (6_000, 0.347)],
    },
    PaperSeries {
        id: "incorrect-6k/from-30k",
        table: PaperTable::AddedData,
        label: "incorrect 6K, from the 30K checkpoint",
        points: &[(0, 0.264), (6_000, 0.350)],
    },
    PaperSeries {
        id: "hard-4k/from-30k",
        table: PaperTable::AddedData,
        label: "hard 4K, from the 30K checkpoint",
        points: &[(0, 0.264), (4_000, 0.296)],
    },
    PaperSeries {
        id: "easy-4k/from-30k",
        table: PaperTable::AddedData,
        label: "easy 4K, from the 30K checkpoint",
        points: &[(0, 0.264), (4_000, 0.352)],
    },
];

/// Every series of the paper, in the order above.
pub fn all_series() -> &'static [PaperSeries] {
    SERIES
}

/// The series with this id in this table, if any.
pub fn series(table: PaperTable, id: &str) -> Option<&'static PaperSeries> {
    SERIES.iter().find(|s| s.table == table && s.id == id)
}

/// The ids of a table's series, for error messages.
pub fn ids(table: PaperTable) -> Vec<&'static str> {
    SERIES
        .iter()
        .filter(|s| s.table == table)
        .map(|s| s.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transcription matches docs/design.md section 1 cell by cell (numbers copied from there).
    #[test]
    fn numbers_match_the_design_tables() {
        let p = |id, table| series(table, id).unwrap().points.to_vec();
        assert_eq!(
            p("qwen2.5-7b-instruct", PaperTable::SizeScaling),
            [(0, 0.127), (1000, 0.055), (10000, 0.188), (30000, 0.264)]
        );
        assert_eq!(
            p("llama-3.1-8b-instruct", PaperTable::SizeScaling),
            [(0, 0.103), (1000, 0.019), (10000, 0.150), (30000, 0.299)]
        );
        assert_eq!(
            p("easy-4k/from-30k", PaperTable::AddedData),
            [(0, 0.264), (4000, 0.352)]
        );
        assert_eq!(
            p("incorrect-6k/from-instruct", PaperTable::AddedData),
            [(0, 0.126), (6000, 0.182)]
        );
        assert_eq!(ids(PaperTable::AddedData).len(), 8);
        assert!(series(PaperTable::AddedData, "qwen2.5-7b-instruct").is_none());
    }

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<_> = all_series().iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all_series().len());
    }
}
