//! minidma, an independent DMA layer in C (see `README.md` beside this crate). The crate only
//! builds it (`build.rs`) and says where the results are, so tests and tools can load the
//! plug-in with `dmaconf run --impl c:PATH --in-process`.
#![forbid(unsafe_code)]

/// The plug-in, compiled as C99 (`-std=c99 -pedantic -Wall -Wextra -Werror`).
pub const LIBRARY: &str = env!("MINIDMA_SO");

/// The same sources compiled as C++ (`-x c++ -Wall -Wextra -Werror`).
pub const LIBRARY_CXX: &str = env!("MINIDMA_CXX_SO");

/// The unit test against a fake host (`test.c`).
pub const UNIT_TEST: &str = env!("MINIDMA_TEST");
