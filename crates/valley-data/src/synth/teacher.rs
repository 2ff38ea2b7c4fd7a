//! The teacher's response: a `<think>` trace that restates the task, plans one line per step,
//! works through the public example showing every intermediate list, and notes the edge cases;
//! then a short answer and a fenced Python solution. Harder problems have more steps, more edge
//! notes and (from MEDIUM_HARD on) a second worked example, so responses grow with difficulty.

use std::fmt::Write as _;

use super::{
    family::PipelineSpec,
    hidden_tests::IoTest,
    noisy_teacher::Belief,
    ops::{show_list, Op, Reducer},
};

/// The Python solution of a belief.
pub fn python_solution(belief: &Belief) -> String {
    let mut code = String::from("import sys\n\n\ndef transform(a):\n");
    for op in &belief.ops {
        op.python(&mut code);
    }
    code.push_str("    return a\n\n\ndef main():\n");
    code.push_str("    data = sys.stdin.read().split()\n");
    code.push_str("    n = int(data[0]) if data else 0\n");
    code.push_str("    a = transform([int(x) for x in data[1:1 + n]])\n");
    belief.reducer.python(belief.forgets_empty, &mut code);
    code.push_str("\n\nif __name__ == \"__main__\":\n    main()\n");
    code
}

fn edge_notes(belief: &Belief) -> Vec<String> {
    let mut notes = vec![
        "n = 0 leaves the second line empty; reading every token with split() handles it."
            .to_string(),
    ];
    let has = |f: fn(&Op) -> bool| belief.ops.iter().any(f);
    if has(|o| matches!(o, Op::FilterCmp(..) | Op::FilterMod { .. })) {
        let empty = match belief.reducer {
            Reducer::Max | Reducer::Min if !belief.forgets_empty => {
                " — then the answer is NONE, so max/min must not see an empty list"
            }
            Reducer::PrintList if !belief.forgets_empty => " — then the answer is EMPTY",
            Reducer::Sum => " — sum([]) is 0, as required",
            Reducer::Count => " — the count is then 0",
            Reducer::ProductMod(_) => " — the product starts at 1, as required",
            _ => "",
        };
        notes.push(format!("A filter can remove every element{empty}."));
    }
    if has(|o| matches!(o, Op::Modulo(_) | Op::FilterMod { .. })) {
        notes.push(
            "Negative numbers: Python's % with a positive modulus already gives a value in 0..m-1."
                .into(),
        );
    }
    if has(|o| matches!(o, Op::Take(_) | Op::Drop(_))) {
        notes.push("Slicing past the end of the list is safe in Python.".into());
    }
    if has(|o| matches!(o, Op::Differences | Op::DifferencesShort)) {
        notes.push("A list with fewer than two elements has no differences.".into());
    }
    if has(|o| matches!(o, Op::Dedupe)) {
        notes.push("dict.fromkeys keeps the first occurrence of each value, in order.".into());
    }
    if has(|o| matches!(o, Op::Affine { .. } | Op::PrefixSums)) {
        notes.push("Values can grow, but Python integers do not overflow.".into());
    }
    if let Reducer::ProductMod(p) = belief.reducer {
        notes.push(format!(
            "Reduce modulo {p} after every multiplication to keep numbers small; Python's % keeps the result non-negative."
        ));
    }
    notes
}

fn work_through(out: &mut String, belief: &Belief, example: &IoTest, nth: &str) {
    let lists = belief.trace(&example.list);
    let _ = writeln!(
        out,
        "Check on the {nth} example: the list is {}.",
        show_list(&example.list)
    );
    for (i, (op, list)) in belief.ops.iter().zip(&lists[1..]).enumerate() {
        let _ = writeln!(
            out,
            "After step {} ({}): {}",
            i + 1,
            op.plan(),
            show_list(list)
        );
    }
    let last = lists.last().map_or(&[][..], Vec::as_slice);
    let result = if belief.forgets_empty && last.is_empty() {
        "an error on the empty list".to_string()
    } else {
        belief.reducer.output(last)
    };
    if result == example.output {
        let _ = writeln!(out, "Result: {result}, which matches the expected output.");
    } else {
        let _ = writeln!(out, "Result: {result}.");
    }
}

/// The full response of the teacher to a problem.
pub fn response(spec: &PipelineSpec, belief: &Belief, examples: &[IoTest]) -> String {
    let mut out = String::from("<think>\n");
    let steps = belief.ops.len();
    let _ = writeln!(
        out,
        "The task: read n integers, apply {steps} {} to the list in order, then {}",
        if steps == 1 {
            "operation"
        } else {
            "operations"
        },
        spec.reducer.sentence()
    );
    out.push_str("\nPlan:\n");
    for (i, op) in belief.ops.iter().enumerate() {
        let _ = writeln!(out, "{}. {}", i + 1, op.plan());
    }
    let _ = writeln!(
        out,
        "{}. {}",
        steps + 1,
        belief.reducer.plan(belief.forgets_empty)
    );
    out.push('\n');
    if let Some(first) = examples.first() {
        work_through(&mut out, belief, first, "first");
    }
    if spec.level >= 2 {
        if let Some(second) = examples.get(1) {
            out.push('\n');
            work_through(&mut out, belief, second, "second");
        }
    }
    out.push_str("\nEdge cases:\n");
    for note in edge_notes(belief) {
        let _ = writeln!(out, "- {note}");
    }
    out.push_str("</think>\n\n");
    let _ = writeln!(
        out,
        "Read the list, apply the {} in order in `transform`, then print the result.\n",
        if steps == 1 { "step" } else { "steps" }
    );
    out.push_str("```python\n");
    out.push_str(&python_solution(belief));
    out.push_str("```\n");
    out
}

/// The code of a response: the last fenced block (as LiveCodeBench extracts it).
pub fn extract_code(response: &str) -> Option<&str> {
    let end = response.rfind("```")?;
    let before = &response[..end];
    let start = before.rfind("```")?;
    let block = &before[start + 3..];
    let body = block.split_once('\n').map_or("", |(_, rest)| rest);
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::ops::Cmp;

    #[test]
    fn response_shape_and_code_extraction() {
        let spec = PipelineSpec {
            level: 2,
            ops: vec![Op::FilterCmp(Cmp::Gt, 3), Op::Sort { desc: false }],
            reducer: Reducer::PrintList,
        };
        let example = IoTest::new(&spec, vec![5, 1, 4]);
        let belief = Belief::faithful(&spec);
        let text = response(&spec, &belief, std::slice::from_ref(&example));
        assert!(text.starts_with("<think>\n"), "{text}");
        assert!(text.contains("After step 1 (keep x > 3): [5, 4]"), "{text}");
        assert!(
            text.contains("After step 2 (sort ascending): [4, 5]"),
            "{text}"
        );
        assert!(text.contains("Result: 4 5, which matches"), "{text}");
        assert!(text.contains("</think>\n\n"), "{text}");
        assert_eq!(extract_code(&text), Some(python_solution(&belief).as_str()));
    }
}
