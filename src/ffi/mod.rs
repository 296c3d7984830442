//! The C boundary: every `unsafe` block of the crate lives in this folder.
//!
//! Each export is declared through [`export!`]: it catches panics (a panic is
//! `CKR_GENERAL_ERROR`, never an unwind into C), logs the internal cause of an
//! error, and maps [`crate::error::Error`] to `CK_RV`. Pointer handling is in
//! the helpers below: bytes in, templates in, mechanisms in, the §5.2 output
//! convention, and `CK_ULONG` conversions that never truncate.
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_snake_case, clippy::missing_safety_doc)]

pub mod exports;
mod mechanism;
pub mod sys;
mod tables;

use crate::error::{Error, Result};
use crate::mechanism::Output;
use crate::object::attr::{kind_of, Encoded, Kind, RawAttribute, RawValue};
use cryptoki_sys::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use zeroize::Zeroizing;

/// Runs the safe body of an export: panics become `CKR_GENERAL_ERROR`, errors
/// are logged with their cause and mapped to their code.
pub(crate) fn run(
    name: &'static str,
    audit: crate::audit::Class,
    body: impl FnOnce() -> Result<()>,
) -> CK_RV {
    crate::audit::begin_call(audit);
    let rv = run_body(name, body);
    crate::audit::finish_call(name, audit, u64::from(rv));
    rv
}

fn run_body(name: &'static str, body: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            let rv = e.rv();
            match &e {
                Error::BufferTooSmall { .. } | Error::NotInitialized => {
                    tracing::trace!(function = name, rv = format_args!("{rv:#x}"), "{e}")
                }
                Error::General(_) | Error::Device(_) | Error::Tampered(_) => {
                    tracing::error!(function = name, rv = format_args!("{rv:#x}"), "{e}")
                }
                _ => tracing::info!(function = name, rv = format_args!("{rv:#x}"), "{e}"),
            }
            rv
        }
        Err(_) => {
            tracing::error!(function = name, "panic caught at the C boundary");
            CKR_GENERAL_ERROR
        }
    }
}

/// Declares `extern "C"` exports whose bodies return `Result<()>`.
macro_rules! export {
    ($( $(#[$meta:meta])* fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block )+) => {
        $(
            $(#[$meta])*
            #[no_mangle]
            pub unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
                const AUDIT: $crate::audit::Class = $crate::audit::class_of(stringify!($name));
                $crate::ffi::run(stringify!($name), AUDIT, move || -> $crate::error::Result<()> { $body })
            }
        )+
    };
}
pub(crate) use export;

/// `CK_ULONG` to `usize`, refusing values that do not fit.
pub(crate) fn to_usize(v: CK_ULONG) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::ArgumentsBad("length does not fit in memory"))
}

/// `usize` to `CK_ULONG`, refusing values that do not fit (32-bit CK_ULONG).
pub(crate) fn to_ulong(v: usize) -> Result<CK_ULONG> {
    CK_ULONG::try_from(v).map_err(|_| Error::general("length does not fit CK_ULONG"))
}

/// Borrows `len` input bytes at `p`. NULL with length 0 is an empty slice.
///
/// # Safety
/// `p` must be NULL or point to `len` readable bytes for the call's duration.
pub(crate) unsafe fn bytes_in<'a>(p: *const CK_BYTE, len: CK_ULONG) -> Result<&'a [u8]> {
    let len = to_usize(len)?;
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::ArgumentsBad(
            "NULL data pointer with a non-zero length",
        ));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Writes one value through an out-pointer, or `CKR_ARGUMENTS_BAD` if NULL.
///
/// # Safety
/// `p` must be NULL or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(p: *mut T, v: T) -> Result<()> {
    if p.is_null() {
        return Err(Error::ArgumentsBad("NULL output pointer"));
    }
    // SAFETY: non-NULL and valid for writes per the caller; unaligned-safe.
    unsafe { p.write_unaligned(v) };
    Ok(())
}

/// Reads one value through an in-pointer, or `CKR_ARGUMENTS_BAD` if NULL.
///
/// # Safety
/// `p` must be NULL or valid for a read of `T`.
pub(crate) unsafe fn read_in<T: Copy>(p: *const T) -> Result<T> {
    if p.is_null() {
        return Err(Error::ArgumentsBad("NULL input pointer"));
    }
    // SAFETY: non-NULL and readable per the caller; may be unaligned.
    Ok(unsafe { p.read_unaligned() })
}

/// The §5.2 convention for a byte output `p`/`plen`: NULL `p` asks for the
/// length; a short buffer gets the length and `CKR_BUFFER_TOO_SMALL` with the
/// operation still active; otherwise the data and its length.
///
/// # Safety
/// `plen` must be valid for reads and writes of a `CK_ULONG`; `p`, if not
/// NULL, must be valid for writes of `*plen` bytes.
pub(crate) unsafe fn out_bytes(
    p: *mut CK_BYTE,
    plen: *mut CK_ULONG,
    f: impl FnOnce(Option<usize>) -> Result<Output>,
) -> Result<()> {
    // SAFETY: the caller's contract is ours.
    unsafe { out_bytes_direct(p, plen, None, |cap, _| f(cap)) }
}

/// [`out_bytes`] for outputs that may be written straight into the caller's
/// buffer: `f` also gets that buffer (all `*plen` bytes) unless it is NULL or
/// overlaps `input` (the two may not alias), and answers
/// [`Output::Written`] when it used it.
///
/// # Safety
/// As [`out_bytes`]; `input` must not be written through `p` by anyone else
/// during the call.
pub(crate) unsafe fn out_bytes_direct(
    p: *mut CK_BYTE,
    plen: *mut CK_ULONG,
    input: Option<&[u8]>,
    f: impl FnOnce(Option<usize>, Option<&mut [u8]>) -> Result<Output>,
) -> Result<()> {
    // SAFETY: per the caller's contract on `plen`.
    let cap = unsafe { read_in(plen)? };
    let cap = if p.is_null() {
        None
    } else {
        Some(to_usize(cap)?)
    };
    let direct = match (cap, input) {
        (Some(c), Some(input)) if c > 0 && !overlaps(p, c, input) => {
            // SAFETY: `p` is non-NULL and valid for writes of `*plen` = `c`
            // bytes (caller's contract); the range overlaps no other slice we
            // hold, and the slice is moved into `f`, so nothing else touches
            // the buffer while it lives.
            Some(unsafe { std::slice::from_raw_parts_mut(p, c) })
        }
        _ => None,
    };
    match f(cap, direct) {
        Ok(Output::Length(n)) => {
            // SAFETY: `plen` is valid for writes (caller).
            unsafe { write_out(plen, to_ulong(n)?) }
        }
        Ok(Output::Written(n)) => {
            if n > cap.unwrap_or(0) {
                return Err(Error::general("wrote past the output buffer"));
            }
            // SAFETY: as above.
            unsafe { write_out(plen, to_ulong(n)?) }
        }
        Ok(Output::Data(d)) => {
            let cap = cap.unwrap_or(0);
            if d.len() > cap {
                // The safe layer promises to fit; never write past the buffer.
                // SAFETY: as above.
                unsafe { write_out(plen, to_ulong(d.len())?)? };
                return Err(Error::BufferTooSmall { needed: d.len() });
            }
            if !d.is_empty() {
                // SAFETY: `p` is non-NULL (cap came from it) and holds `cap >=
                // d.len()` writable bytes; `d` is our own buffer, no overlap.
                unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), p, d.len()) };
            }
            // SAFETY: as above.
            unsafe { write_out(plen, to_ulong(d.len())?) }
        }
        Err(Error::BufferTooSmall { needed }) => {
            // SAFETY: as above.
            unsafe { write_out(plen, to_ulong(needed)?)? };
            Err(Error::BufferTooSmall { needed })
        }
        Err(e) => Err(e),
    }
}

/// Whether `len` bytes at `p` share any byte with `input`.
fn overlaps(p: *const CK_BYTE, len: usize, input: &[u8]) -> bool {
    let (a, b) = (p as usize, input.as_ptr() as usize);
    a < b.saturating_add(input.len()) && b < a.saturating_add(len)
}

/// The §5.2 convention for an array of `CK_ULONG`-sized items (slot lists,
/// mechanism lists).
///
/// # Safety
/// `pcount` valid for reads and writes; `p`, if not NULL, valid for writes of
/// `*pcount` items.
pub(crate) unsafe fn out_list<T: Copy>(
    p: *mut T,
    pcount: *mut CK_ULONG,
    items: &[T],
) -> Result<()> {
    if pcount.is_null() {
        return Err(Error::ArgumentsBad("NULL count pointer"));
    }
    if p.is_null() {
        // SAFETY: checked non-NULL above; valid per the caller.
        return unsafe { write_out(pcount, to_ulong(items.len())?) };
    }
    // SAFETY: as above.
    let cap = to_usize(unsafe { read_in(pcount)? })?;
    // SAFETY: as above.
    unsafe { write_out(pcount, to_ulong(items.len())?)? };
    if cap < items.len() {
        return Err(Error::BufferTooSmall {
            needed: items.len(),
        });
    }
    for (i, item) in items.iter().enumerate() {
        // SAFETY: `p` holds at least `cap >= items.len()` items (caller).
        unsafe { p.add(i).write_unaligned(*item) };
    }
    Ok(())
}

/// Copies an application template in, nested templates included.
///
/// # Safety
/// `p` must be NULL or point to `n` readable `CK_ATTRIBUTE`s whose `pValue`
/// (when not NULL) points to `ulValueLen` readable bytes.
pub(crate) unsafe fn template_in(p: *const CK_ATTRIBUTE, n: CK_ULONG) -> Result<Vec<RawAttribute>> {
    // SAFETY: forwarded caller contract.
    unsafe { template_in_depth(p, n, 0) }
}

unsafe fn template_in_depth(
    p: *const CK_ATTRIBUTE,
    n: CK_ULONG,
    depth: u32,
) -> Result<Vec<RawAttribute>> {
    let n = to_usize(n)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Error::ArgumentsBad("NULL template with a non-zero count"));
    }
    if depth > 2 {
        return Err(Error::AttributeValueInvalid);
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: `p` points to `n` attributes (caller); `i < n`.
        let a = unsafe { p.add(i).read_unaligned() };
        let ty = u64::from(a.type_);
        let value = if kind_of(ty) == Kind::Template {
            let size = std::mem::size_of::<CK_ATTRIBUTE>();
            let len = to_usize(a.ulValueLen)?;
            if len % size != 0 {
                return Err(Error::AttributeValueInvalid);
            }
            let count = to_ulong(len / size)?;
            // SAFETY: a template attribute's value is an array of
            // `ulValueLen / sizeof(CK_ATTRIBUTE)` attributes (v3.0 §4.1).
            RawValue::Template(unsafe {
                template_in_depth(a.pValue as *const CK_ATTRIBUTE, count, depth + 1)?
            })
        } else {
            // SAFETY: `pValue` holds `ulValueLen` bytes (caller).
            let bytes = unsafe { bytes_in(a.pValue as *const u8, a.ulValueLen)? };
            RawValue::Bytes(Zeroizing::new(bytes.to_vec()))
        };
        out.push(RawAttribute { ty, value });
    }
    Ok(out)
}

/// Reads the attribute types an application asks for.
///
/// # Safety
/// As [`template_in`], values are not read.
pub(crate) unsafe fn types_in(p: *const CK_ATTRIBUTE, n: CK_ULONG) -> Result<Vec<u64>> {
    let n = to_usize(n)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Error::ArgumentsBad("NULL template with a non-zero count"));
    }
    // SAFETY: `p` points to `n` attributes (caller).
    Ok((0..n)
        .map(|i| u64::from(unsafe { p.add(i).read_unaligned() }.type_))
        .collect())
}

/// Fills the application's template for C_GetAttributeValue (v3.0 §5.7):
/// each attribute gets its length or value, `CK_UNAVAILABLE_INFORMATION` when
/// sensitive, absent or too short; the first error is returned at the end.
///
/// # Safety
/// `p` points to `results.len()` writable attributes whose non-NULL `pValue`
/// buffers hold `ulValueLen` bytes.
pub(crate) unsafe fn attributes_out(
    p: *mut CK_ATTRIBUTE,
    results: Vec<Result<Encoded>>,
) -> Result<()> {
    let mut first_err: Option<Error> = None;
    for (i, r) in results.into_iter().enumerate() {
        // SAFETY: `p` has `results.len()` entries (caller); `i` is in range.
        let slot = unsafe { p.add(i) };
        // SAFETY: as above.
        let mut a = unsafe { slot.read_unaligned() };
        // SAFETY: `a` came from the application's template.
        let outcome = r.and_then(|enc| unsafe { encoded_out(&mut a, &enc) });
        if let Err(e) = outcome {
            a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            first_err.get_or_insert(e);
        }
        // SAFETY: as above.
        unsafe { slot.write_unaligned(a) };
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

unsafe fn encoded_out(a: &mut CK_ATTRIBUTE, enc: &Encoded) -> Result<()> {
    if a.pValue.is_null() {
        a.ulValueLen = to_ulong(enc.len())?;
        return Ok(());
    }
    if to_usize(a.ulValueLen)? < enc.len() {
        return Err(Error::BufferTooSmall { needed: enc.len() });
    }
    match enc {
        Encoded::Bytes(b) => {
            // SAFETY: `pValue` holds `ulValueLen >= b.len()` bytes (caller).
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), a.pValue as *mut u8, b.len()) };
        }
        Encoded::Template(items) => {
            let arr = a.pValue as *mut CK_ATTRIBUTE;
            let mut first_err = None;
            for (i, (ty, value)) in items.iter().enumerate() {
                // SAFETY: the array holds `ulValueLen / sizeof(CK_ATTRIBUTE)
                // >= items.len()` entries, checked above.
                let slot = unsafe { arr.add(i) };
                // SAFETY: as above.
                let mut inner = unsafe { slot.read_unaligned() };
                inner.type_ = CK_ATTRIBUTE_TYPE::try_from(*ty).map_err(Error::general)?;
                // SAFETY: the inner pValue is the application's buffer.
                if let Err(e) = unsafe { encoded_out(&mut inner, value) } {
                    inner.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    first_err.get_or_insert(e);
                }
                // SAFETY: as above.
                unsafe { slot.write_unaligned(inner) };
            }
            if let Some(e) = first_err {
                return Err(e);
            }
        }
    }
    a.ulValueLen = to_ulong(enc.len())?;
    Ok(())
}
