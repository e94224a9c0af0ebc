//! Glob-style matching with Redis's exact rules (`stringmatchlen`): `*`, `?`, `[...]` with ranges
//! and `^`, and `\` escapes. Bytes compare as C's signed `char`, as in Redis.

/// Whether `string` matches `pattern`.
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, string, &mut skip_longer, 0)
}

/// Redis gives up (no match) past this many nested `*`: it bounds the recursion.
const MAX_NESTING: u32 = 1000;

fn match_impl(pattern: &[u8], string: &[u8], skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    // A C string: reading past the end yields NUL.
    let pat = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let (mut p, mut s) = (0usize, 0usize);
    let (mut plen, mut slen) = (pattern.len(), string.len());
    while plen > 0 && slen > 0 {
        match pat(p) {
            b'*' => {
                while plen > 0 && pat(p + 1) == b'*' {
                    p += 1;
                    plen -= 1;
                }
                if plen == 1 {
                    return true;
                }
                while slen > 0 {
                    if match_impl(&pattern[p + 1..p + plen], &string[s..s + slen], skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                    slen -= 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s += 1;
                slen -= 1;
            }
            b'[' => {
                p += 1;
                plen -= 1;
                let not = pat(p) == b'^';
                if not {
                    p += 1;
                    plen = plen.saturating_sub(1);
                }
                let mut matched = false;
                let c = string[s];
                loop {
                    if pat(p) == b'\\' && plen >= 2 {
                        p += 1;
                        plen -= 1;
                        if pat(p) == c {
                            matched = true;
                        }
                    } else if pat(p) == b']' {
                        break;
                    } else if plen == 0 {
                        p -= 1;
                        plen += 1;
                        break;
                    } else if plen >= 3 && pat(p + 1) == b'-' {
                        let (mut start, mut end) = (pat(p) as i8, pat(p + 2) as i8);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        p += 2;
                        plen -= 2;
                        if (start..=end).contains(&(c as i8)) {
                            matched = true;
                        }
                    } else if pat(p) == c {
                        matched = true;
                    }
                    p += 1;
                    plen -= 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
            first => {
                let mut lit = first;
                if first == b'\\' && plen >= 2 {
                    p += 1;
                    plen -= 1;
                    lit = pat(p);
                }
                if lit != string[s] {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
        }
        p += 1;
        plen -= 1;
        if slen == 0 {
            while pat(p) == b'*' {
                p += 1;
                plen = plen.wrapping_sub(1);
            }
            break;
        }
    }
    plen == 0 && slen == 0
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        let yes = [
            ("*", "anything"),
            ("h?llo", "hello"),
            ("h*llo", "heeeello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("h[b-a]llo", "hallo"),
            ("h\\*llo", "h*llo"),
            ("*a*", "banana"),
            ("a*", "a"),
            ("[abc", "a"),
        ];
        for (p, s) in yes {
            assert!(matches(p.as_bytes(), s.as_bytes()), "{p} ~ {s}");
        }
        let deep = "*?".repeat(50_000);
        assert!(!matches(deep.as_bytes(), "a".repeat(50_000).as_bytes()), "deep patterns give up like Redis");
        let no = [("h?llo", "hllo"), ("h[^e]llo", "hello"), ("a", ""), ("*b", "aaa"), ("", "a")];
        for (p, s) in no {
            assert!(!matches(p.as_bytes(), s.as_bytes()), "{p} !~ {s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(p in proptest::collection::vec(proptest::sample::select(b"*?[]^-\\ab".to_vec()), 0..12),
                        s in proptest::collection::vec(proptest::sample::select(b"ab*[]".to_vec()), 0..12)) {
            let _ = matches(&p, &s);
        }
    }
}
