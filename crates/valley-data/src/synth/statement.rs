//! English problem statements in the competitive-programming style: the task, numbered steps,
//! input and output format, and the public examples.

use std::fmt::Write as _;

use super::{
    family::PipelineSpec,
    hidden_tests::{IoTest, MAX_ABS, MAX_N},
};

/// The statement of a problem with its public examples.
pub fn statement(spec: &PipelineSpec, examples: &[IoTest]) -> String {
    let mut s = String::new();
    let steps = spec.ops.len();
    let _ = writeln!(
        s,
        "You are given a list of n integers a_1, a_2, ..., a_n. Apply the following {} in order:\n",
        if steps == 1 {
            "operation".to_string()
        } else {
            format!("{steps} operations")
        }
    );
    for (i, op) in spec.ops.iter().enumerate() {
        let _ = writeln!(s, "{}. {}", i + 1, op.sentence());
    }
    let reducer = spec.reducer.sentence();
    let _ = writeln!(s, "\nThen {reducer}\n");
    let _ = writeln!(s, "Input\n");
    let _ = writeln!(
        s,
        "The first line contains an integer n (0 <= n <= {MAX_N}). The second line contains the n integers a_1, ..., a_n separated by spaces (|a_i| <= {MAX_ABS}); it is empty when n = 0.\n"
    );
    let _ = writeln!(s, "Output\n");
    let _ = writeln!(s, "Print one line: the result described above.\n");
    for (i, ex) in examples.iter().enumerate() {
        let _ = writeln!(
            s,
            "Example {}\n\nInput:\n{}\nOutput:\n{}\n",
            i + 1,
            ex.input.trim_end_matches('\n'),
            ex.output
        );
    }
    s.truncate(s.trim_end().len());
    s.push('\n');
    s
}
