//! Reading a program's stdout or stderr up to a byte cap. Past the cap the reader calls back (the
//! runner then kills the run) and keeps draining, so the program never blocks on a full pipe while
//! it is being killed.

use std::io::Read;

/// Bytes read and whether the cap cut them.
#[derive(Debug, Default)]
pub struct Captured {
    /// Up to `cap` bytes.
    pub bytes: Vec<u8>,
    /// More than `cap` bytes arrived.
    pub truncated: bool,
}

/// Reads `source` to EOF, keeping the first `cap` bytes; calls `over_cap` once when more arrive.
pub fn read_capped(mut source: impl Read, cap: usize, over_cap: impl FnOnce()) -> Captured {
    let mut out = Captured::default();
    let mut over_cap = Some(over_cap);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = cap.saturating_sub(out.bytes.len());
                out.bytes.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    out.truncated = true;
                    if let Some(f) = over_cap.take() {
                        f();
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_cap_bytes_and_calls_back_once() {
        let data = vec![7u8; 200_000];
        let mut calls = 0;
        let got = read_capped(&data[..], 1000, || calls += 1);
        assert_eq!(got.bytes.len(), 1000);
        assert!(got.truncated);
        assert_eq!(calls, 1);
        let small = read_capped(&b"hello"[..], 1000, || panic!("not over the cap"));
        assert_eq!(small.bytes, b"hello");
        assert!(!small.truncated);
    }
}
