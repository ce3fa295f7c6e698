//! `LIMIT $n` capped at Bind: the LIMIT rewrite reports [`LimitChange::CapParam`] for a
//! statement whose limit is a parameter; when the client binds it, [`cap_bind_params`] rewrites
//! that parameter's value in the Bind message if it exceeds the cap or is NULL (LIMIT NULL
//! means no limit). Only the parameters listed are touched; every other byte stays as sent.
//!
//! Values: text format is read as a number (`" 20 "`, `+20`, `20.0`); anything that is not a
//! number at most the cap (hexadecimal, `1e9`, `NaN`, garbage) is replaced by the cap in
//! decimal, so nothing the server could read as a larger limit gets through. A negative value
//! is left alone (the server refuses it). Binary format is read as int8/int4/int2 by the
//! value's length (Postgres infers `bigint` for `LIMIT $n`); a NULL becomes the cap as text,
//! or as an int8 in binary format. A binary value of another length cannot be read and is
//! refused.

use super::limit::{self, LimitChange};
use super::memo::analyze;
use super::policy::Policy;
use super::refusal::{FEATURE_NOT_SUPPORTED, Refusal};

/// One parameter to cap: its number (1-based) and the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCap {
    /// Parameter number `n` of `$n`.
    pub param: u32,
    /// The largest value let through.
    pub max: u64,
}

/// The parameters of `text` (a statement as prepared) to cap at Bind under `policy`.
pub fn param_caps(policy: Option<&Policy>, text: &str) -> Vec<ParamCap> {
    let Some(rule) = policy.filter(|p| !p.is_empty()).and_then(Policy::limit_rule) else {
        return Vec::new();
    };
    if rule.max.is_none() {
        return Vec::new();
    }
    let analysis = analyze(text);
    let Some(rewrite) = limit::rewrite(text, &analysis, rule) else {
        return Vec::new();
    };
    rewrite
        .changes
        .iter()
        .filter_map(|c| match c {
            LimitChange::CapParam { param, max, .. } => Some(ParamCap { param: *param, max: *max }),
            _ => None,
        })
        .collect()
}

/// A Bind body's tail after the statement name (format codes, parameters, result formats).
struct Tail<'a> {
    formats: Vec<i16>,
    params: Vec<Option<&'a [u8]>>,
    rest: &'a [u8],
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Some(head)
}

fn take_i16(buf: &mut &[u8]) -> Option<i16> {
    take(buf, 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
}

fn parse_tail(mut buf: &[u8]) -> Option<Tail<'_>> {
    // Counts are unsigned 16-bit, as Postgres reads them (up to 65535).
    let count = |buf: &mut &[u8]| take(buf, 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let nfmt = count(&mut buf)?;
    let formats = (0..nfmt).map(|_| take_i16(&mut buf)).collect::<Option<Vec<_>>>()?;
    let nparams = count(&mut buf)?;
    let mut params = Vec::with_capacity(nparams);
    for _ in 0..nparams {
        let len = i32::from_be_bytes(take(&mut buf, 4)?.try_into().ok()?);
        params.push(if len < 0 { None } else { Some(take(&mut buf, len as usize)?) });
    }
    Some(Tail { formats, params, rest: buf })
}

/// The capped value of one parameter, or `None` to keep it.
fn capped_value(value: Option<&[u8]>, binary: bool, max: u64) -> Result<Option<Vec<u8>>, Refusal> {
    let Some(v) = value else {
        return Ok(Some(if binary { (max as i64).to_be_bytes().to_vec() } else { max.to_string().into_bytes() }));
    };
    if !binary {
        let keep =
            std::str::from_utf8(v).ok().and_then(|s| s.trim().parse::<f64>().ok()).is_some_and(|n| n <= max as f64);
        return Ok((!keep).then(|| max.to_string().into_bytes()));
    }
    let n: i64 = match v.len() {
        8 => i64::from_be_bytes(v.try_into().expect("8 bytes")),
        4 => i32::from_be_bytes(v.try_into().expect("4 bytes")).into(),
        2 => i16::from_be_bytes(v.try_into().expect("2 bytes")).into(),
        len => {
            return Err(Refusal::new(
                FEATURE_NOT_SUPPORTED,
                format!("a LIMIT parameter in binary format must be an integer (got {len} bytes)"),
            )
            .by("", "limit"));
        }
    };
    if n <= max as i64 {
        return Ok(None);
    }
    let m = max as i64;
    Ok(Some(match v.len() {
        8 => m.to_be_bytes().to_vec(),
        4 => (m.min(i32::MAX as i64) as i32).to_be_bytes().to_vec(),
        _ => (m.min(i16::MAX as i64) as i16).to_be_bytes().to_vec(),
    }))
}

/// Rewrites `params_and_formats` (the Bind body after the statement name) so every parameter
/// in `caps` is at most its cap. `Ok(None)`: nothing to change (or a malformed tail, which the
/// server rejects as it is).
pub fn cap_bind_params(params_and_formats: &[u8], caps: &[ParamCap]) -> Result<Option<Vec<u8>>, Refusal> {
    if caps.is_empty() {
        return Ok(None);
    }
    let Some(tail) = parse_tail(params_and_formats) else {
        return Ok(None);
    };
    let mut values: Vec<Option<Vec<u8>>> = vec![None; tail.params.len()];
    let mut changed = false;
    for cap in caps {
        let Some(i) = (cap.param as usize).checked_sub(1).filter(|i| *i < tail.params.len()) else {
            continue; // too few parameters: the server reports it
        };
        let format = match tail.formats.len() {
            0 => 0,
            1 => tail.formats[0],
            _ => tail.formats.get(i).copied().unwrap_or(0),
        };
        let current = values[i].as_deref().or(tail.params[i]);
        if let Some(new) = capped_value(current, format == 1, cap.max)? {
            values[i] = Some(new);
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(params_and_formats.len() + 16);
    out.extend_from_slice(&(tail.formats.len() as u16).to_be_bytes());
    for f in &tail.formats {
        out.extend_from_slice(&f.to_be_bytes());
    }
    out.extend_from_slice(&(tail.params.len() as u16).to_be_bytes());
    for (old, new) in tail.params.iter().zip(&values) {
        match new.as_deref().or(*old) {
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    out.extend_from_slice(tail.rest);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(formats: &[i16], params: &[Option<&[u8]>], results: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(formats.len() as u16).to_be_bytes());
        formats.iter().for_each(|f| out.extend_from_slice(&f.to_be_bytes()));
        out.extend_from_slice(&(params.len() as u16).to_be_bytes());
        for p in params {
            match p {
                Some(v) => {
                    out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    out.extend_from_slice(v);
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out.extend_from_slice(&(results.len() as u16).to_be_bytes());
        results.iter().for_each(|f| out.extend_from_slice(&f.to_be_bytes()));
        out
    }

    const CAP2: [ParamCap; 1] = [ParamCap { param: 2, max: 10 }];

    #[test]
    fn text_values_above_the_cap_or_null_are_capped_others_kept() {
        for (v, want) in [
            (Some(&b"1000"[..]), Some(&b"10"[..])),
            (Some(b" 11 "), Some(b"10")),
            (Some(b"0x7fffffff"), Some(b"10")),
            (Some(b"NaN"), Some(b"10")),
            (None, Some(b"10")),
            (Some(b"10"), None),
            (Some(b" 3"), None),
            (Some(b"-1"), None),
        ] {
            let before = tail(&[], &[Some(b"abc"), v], &[1]);
            let got = cap_bind_params(&before, &CAP2).expect("text");
            match want {
                Some(w) => assert_eq!(got, Some(tail(&[], &[Some(b"abc"), Some(w)], &[1])), "{v:?}"),
                None => assert_eq!(got, None, "{v:?}"),
            }
        }
    }

    #[test]
    fn binary_values_are_capped_at_their_width() {
        let eight = 1_000_000i64.to_be_bytes();
        let got = cap_bind_params(&tail(&[1], &[Some(b"\0\0\0\x01"), Some(&eight)], &[]), &CAP2).unwrap();
        assert_eq!(got, Some(tail(&[1], &[Some(b"\0\0\0\x01"), Some(&10i64.to_be_bytes())], &[])));
        let four = 50i32.to_be_bytes();
        let got = cap_bind_params(&tail(&[0, 1], &[Some(b"x"), Some(&four)], &[]), &CAP2).unwrap();
        assert_eq!(got, Some(tail(&[0, 1], &[Some(b"x"), Some(&10i32.to_be_bytes())], &[])));
        let small = 5i16.to_be_bytes();
        assert_eq!(cap_bind_params(&tail(&[1], &[None, Some(&small)], &[]), &CAP2).unwrap(), None);
        let null = cap_bind_params(&tail(&[1], &[None, None], &[]), &CAP2).unwrap();
        assert_eq!(null, Some(tail(&[1], &[None, Some(&10i64.to_be_bytes())], &[])));
        let odd = cap_bind_params(&tail(&[1], &[None, Some(b"abc")], &[]), &CAP2).expect_err("3 bytes");
        assert_eq!(odd.sqlstate, "0A000");
    }

    #[test]
    fn missing_parameters_and_malformed_tails_are_left_to_the_server() {
        assert_eq!(cap_bind_params(&tail(&[], &[Some(b"99")], &[]), &CAP2).unwrap(), None);
        assert_eq!(cap_bind_params(b"\0", &CAP2).unwrap(), None);
        assert_eq!(cap_bind_params(&tail(&[], &[Some(b"99"), Some(b"99")], &[]), &[]).unwrap(), None);
    }

    #[test]
    fn caps_come_from_the_policy_limit_rule() {
        use crate::config::policy::{LimitConfig, PolicyConfig, SafetyConfig};
        let list: Vec<PolicyConfig> =
            serde_yaml::from_str("- {name: bi, user: bi, limit: {inject: 5, max: 10}}").expect("yaml");
        let policies = crate::sql::Policies::from_config(&SafetyConfig::default(), &LimitConfig::default(), &list)
            .expect("policies");
        let bi = policies.for_session("bi", "db").expect("bi");
        let text = "SELECT * FROM t WHERE a = $1 ORDER BY a LIMIT $2";
        assert_eq!(param_caps(Some(&bi), text), [ParamCap { param: 2, max: 10 }]);
        assert!(param_caps(None, text).is_empty());
        assert!(param_caps(Some(&bi), "SELECT * FROM t LIMIT 3").is_empty());
    }
}
