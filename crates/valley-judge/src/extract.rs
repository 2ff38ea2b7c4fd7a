//! Code extraction as LiveCodeBench does it: the text between the last two lines that contain a
//! fence (```), so the last fenced block wins. One difference: with fewer than two fence lines
//! LiveCodeBench extracts nothing, we take the raw text (a bare completion such as HumanEval's).

/// The code of a model response.
pub fn extract_code(response: &str) -> &str {
    let lines: Vec<(usize, &str)> = line_spans(response);
    let fences: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, (_, l))| l.contains("```"))
        .map(|(i, _)| i)
        .collect();
    if fences.len() < 2 {
        return response;
    }
    let (open, close) = (fences[fences.len() - 2], fences[fences.len() - 1]);
    if close == open + 1 {
        return "";
    }
    let start = lines[open + 1].0;
    let end = lines[close].0;
    // Drop the newline before the closing fence, as `"\n".join(lines)` does.
    response[start..end]
        .strip_suffix('\n')
        .unwrap_or(&response[start..end])
}

/// Each line with its byte offset.
fn line_spans(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut pos = 0;
    for line in text.split('\n') {
        out.push((pos, line));
        pos += line.len() + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_fenced_block_wins() {
        let r = "think\n```python\nprint(1)\n```\nbetter:\n```python\nx = 2\nprint(x)\n```\nbye";
        assert_eq!(extract_code(r), "x = 2\nprint(x)");
    }

    #[test]
    fn raw_text_without_fences() {
        assert_eq!(extract_code("    return a + b\n"), "    return a + b\n");
        assert_eq!(
            extract_code("```python\nonly an opening"),
            "```python\nonly an opening"
        );
        assert_eq!(extract_code("```\n```"), "");
    }
}
