//! What a server process needs around [`serve`](crate::serve) when it hosts foreign code: the
//! protocol moved off file descriptor 1, and a session that only says why it cannot serve.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::fd::AsFd;

use crate::message::{code, read_line, Message};

/// Moves the protocol off standard output: returns a copy of file descriptor 1 for the wire and
/// points descriptor 1 at standard error, so a plug-in that prints (`printf`, `puts`) writes to
/// the log instead of corrupting the protocol (`spec/9-wire.md`, "Transport", 2). Call it before
/// loading the plug-in.
pub fn protocol_stdout() -> io::Result<File> {
    io::stdout().lock().flush()?;
    let copy = io::stdout().as_fd().try_clone_to_owned()?;
    // SAFETY: dup2 on the process's own standard descriptors, both open for its whole life; it
    // atomically makes descriptor 1 another name for descriptor 2 and touches no Rust memory.
    // `std::io::stdout()` keeps writing to descriptor 1, which now reaches standard error.
    let r = unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(File::from(copy))
}

/// Turns off core files for this process: a plug-in host's crash is a result (`crash` with the
/// signal), and a conformance run that meets many of them should not fill the working directory
/// with cores. Debug a crash with `--in-process` under a debugger instead.
pub fn no_core_files() -> io::Result<()> {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A session for a server that cannot serve at all (its implementation did not load): answers
/// `hello` with the error `unavailable` and `why`, any other request likewise, until the end of
/// the input or `shutdown`.
pub fn refuse(mut reader: impl BufRead, mut writer: impl Write, why: &str) -> io::Result<()> {
    loop {
        let line = match read_line(&mut reader) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => String::new(),
            Err(e) => return Err(e),
        };
        let m = Message::parse(&line).unwrap_or_default();
        if m.call.as_deref() == Some("shutdown") {
            writer.write_all(Message::reply(m.id).line().as_bytes())?;
            return writer.flush();
        }
        let answer = Message::failure(m.id, code::UNAVAILABLE, why);
        writer.write_all(answer.line().as_bytes())?;
        writer.flush()?;
    }
}
