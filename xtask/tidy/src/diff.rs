//! A line diff in the unified format, for the messages of checks that compare files.
//!
//! The common head and tail are set aside first; the rest is aligned by a longest common
//! subsequence table, which is exact and plenty fast for listings of a few thousand lines.
//! Past `MAX_CELLS` table cells (16 million) the changed middle is shown as removed, then
//! added.

/// The largest table the alignment builds (old lines × new lines in the changed middle).
const MAX_CELLS: usize = 16_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Removed,
    Added,
}

/// The differences between `old` and `new` as a unified diff with `context` lines around
/// each change, headed by the two names; empty when the texts are equal.
///
/// # Examples
///
/// ```
/// let d = graceful_tidy::diff::unified("a\nb\nc\n", "a\nB\nc\n", "old", "new", 1);
/// assert_eq!(d, "--- old\n+++ new\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
/// ```
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str, context: usize) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = align(&a, &b);
    if ops.iter().all(|op| *op == Op::Same) {
        return String::new();
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    // Positions in `ops`, with the line numbers in `a` and `b` where each op starts.
    let mut starts = Vec::with_capacity(ops.len());
    let (mut i, mut j) = (0, 0);
    for op in &ops {
        starts.push((i, j));
        match op {
            Op::Same => {
                i += 1;
                j += 1;
            }
            Op::Removed => i += 1,
            Op::Added => j += 1,
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k] != Op::Same).collect();
    let mut k = 0;
    while k < changed.len() {
        let first = changed[k];
        let mut last = first;
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * context + 1 {
            k += 1;
            last = changed[k];
        }
        k += 1;
        let from = first.saturating_sub(context);
        let to = (last + context + 1).min(ops.len());
        let (a0, b0) = starts[from];
        let a_len = (from..to).filter(|&x| ops[x] != Op::Added).count();
        let b_len = (from..to).filter(|&x| ops[x] != Op::Removed).count();
        out.push_str(&format!(
            "@@ -{},{a_len} +{},{b_len} @@\n",
            a0 + usize::from(a_len > 0),
            b0 + usize::from(b_len > 0)
        ));
        for x in from..to {
            let (ai, bj) = starts[x];
            let (mark, line) = match ops[x] {
                Op::Same => (' ', a[ai]),
                Op::Removed => ('-', a[ai]),
                Op::Added => ('+', b[bj]),
            };
            out.push(mark);
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The edit script turning `a` into `b`.
fn align(a: &[&str], b: &[&str]) -> Vec<Op> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let mut ops = vec![Op::Same; head];
    let (n, m) = (am.len(), bm.len());
    if n.saturating_mul(m) > MAX_CELLS {
        ops.extend(std::iter::repeat_n(Op::Removed, n));
        ops.extend(std::iter::repeat_n(Op::Added, m));
    } else {
        // lcs[i * (m + 1) + j]: the longest common subsequence of am[i..] and bm[j..].
        let mut lcs = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * (m + 1) + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    lcs[(i + 1) * (m + 1) + j].max(lcs[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                ops.push(Op::Same);
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * (m + 1) + j] >= lcs[i * (m + 1) + j + 1]) {
                // Removals before additions, as diff(1) shows them.
                ops.push(Op::Removed);
                i += 1;
            } else {
                ops.push(Op::Added);
                j += 1;
            }
        }
    }
    ops.extend(std::iter::repeat_n(Op::Same, tail));
    ops
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "x", "y", 3), "");
    }

    #[test]
    fn far_apart_changes_make_two_hunks() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new: String = (1..=20)
            .filter(|&i| i != 18)
            .map(|i| {
                if i == 3 {
                    "three\n".to_string()
                } else {
                    format!("{i}\n")
                }
            })
            .collect();
        let d = unified(&old, &new, "old", "new", 1);
        assert_eq!(
            d,
            "--- old\n+++ new\n@@ -2,3 +2,3 @@\n 2\n-3\n+three\n 4\n@@ -17,3 +17,2 @@\n 17\n-18\n 19\n"
        );
    }

    #[test]
    fn from_and_to_empty() {
        assert_eq!(
            unified("", "a\n", "old", "new", 3),
            "--- old\n+++ new\n@@ -0,0 +1,1 @@\n+a\n"
        );
        assert_eq!(
            unified("a\n", "", "old", "new", 3),
            "--- old\n+++ new\n@@ -1,1 +0,0 @@\n-a\n"
        );
    }
}
