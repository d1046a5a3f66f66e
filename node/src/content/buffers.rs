//! Memory for whole blobs. A segment is tens of megabytes, and memory new to the process is faulted in and zeroed
//! one 4 KiB page at a time; in 2 MiB pages that costs a fraction, where the kernel allows them on request
//! (`transparent_hugepage` set to `madvise`, as Debian ships it).

use std::io::Read;
use std::path::Path;

use bytes::Bytes;

const HUGE_PAGE: usize = 2 << 20;

/// An empty vector with room for `len` bytes, in huge pages where the kernel has them.
pub fn blob_buffer(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    if len < 2 * HUGE_PAGE {
        // It may not hold one whole huge page.
        return v;
    }
    let spare = v.spare_capacity_mut();
    let start = spare.as_mut_ptr() as usize;
    let page = 4096;
    let aligned = start.next_multiple_of(page);
    let end = (start + spare.len()) / page * page;
    // SAFETY: the range (megabytes long, as `len` is) lies within the vector's own allocation, and the advice changes
    // only how its pages are backed, never their contents.
    let advised = unsafe {
        rustix::mm::madvise(aligned as *mut std::ffi::c_void, end - aligned, rustix::mm::Advice::LinuxHugepage)
    };
    if let Err(e) = advised {
        tracing::trace!(error = %e, "no huge pages for a blob buffer");
    }
    v
}

/// The whole file, read into a [`blob_buffer`].
pub fn read_blob_file(path: &Path) -> std::io::Result<Bytes> {
    let mut file = std::fs::File::open(path)?;
    let len = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
    let mut data = blob_buffer(len);
    file.read_to_end(&mut data)?;
    Ok(Bytes::from(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_read_into_a_blob_buffer_is_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // Below and above the size that gets huge pages.
        for len in [0, 1, 4095, 4097, 3 << 20, (5 << 20) + 3] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let path = dir.path().join(len.to_string());
            std::fs::write(&path, &data).unwrap();
            assert_eq!(read_blob_file(&path).unwrap(), data, "{len} bytes");
        }
    }
}
