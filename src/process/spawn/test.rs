use std::path::PathBuf;

use super::*;

fn config() -> SpawnConfig {
    SpawnConfig {
        max_frame: 1 << 20,
        env: Vec::new(),
        args: Vec::new(),
        initializer: None,
        initializer_timeout: None,
    }
}

/// The header of the ELF note that holds a GNU build id of 20 bytes: name size 4, descriptor
/// size 20, type `NT_GNU_BUILD_ID` (3), name "GNU".
const BUILD_ID_NOTE: [u8; 16] = [4, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, b'G', b'N', b'U', 0];

/// A copy of this test binary, altered by `edit`, removed on drop.
struct Copy(PathBuf);

impl Copy {
    fn new(name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> Copy {
        use std::os::unix::fs::PermissionsExt;
        let mut bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        edit(&mut bytes);
        let path =
            std::env::temp_dir().join(format!("parexec-worker-{}-{name}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Copy(path)
    }

    fn spawn(&self) -> Result<(Worker, UnixStream), Error> {
        spawn_program(&config(), &self.0, None)
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Where this binary's build-id note starts, if the linker wrote one.
fn build_id_note(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(BUILD_ID_NOTE.len())
        .position(|w| w == BUILD_ID_NOTE)
}

fn refused_as_another_build(outcome: Result<(Worker, UnixStream), Error>) {
    match outcome {
        Err(Error::Handshake(message)) => {
            assert!(message.contains("different build"), "{message}");
        }
        Err(other) => panic!("expected a handshake error, got {other:?}"),
        Ok((worker, _)) => {
            worker.reap(true);
            panic!("a worker of another build was accepted");
        }
    }
}

#[test]
fn an_identical_copy_is_accepted() {
    // The control for the tests below: only the edits make a copy fail.
    let copy = Copy::new("identical", |_| {});
    let (worker, _writer) = copy.spawn().unwrap();
    assert_eq!(worker.reap(false), WorkerExit::Code(0));
}

#[test]
fn a_worker_with_another_build_id_is_refused() {
    let copy = Copy::new("build-id", |bytes| {
        let note = build_id_note(bytes).expect("the test binary has a GNU build id");
        bytes[note + BUILD_ID_NOTE.len()] ^= 0xff;
    });
    refused_as_another_build(copy.spawn());
}

#[test]
fn without_a_build_id_the_content_identifies_the_executable() {
    let without_id = |bytes: &mut Vec<u8>| {
        let note = build_id_note(bytes).expect("the test binary has a GNU build id");
        // Another note type: readers no longer see a build id.
        bytes[note + 8] = 0x7e;
    };
    let plain = Copy::new("no-build-id", without_id);
    let longer = Copy::new("no-build-id-appended", |bytes| {
        without_id(bytes);
        bytes.push(0);
    });
    let plain_id = launch::identity_of(&plain.0).unwrap();
    assert_eq!(plain_id, launch::identity_of(&plain.0).unwrap());
    assert_ne!(plain_id, launch::identity_of(&longer.0).unwrap());
    assert_ne!(plain_id, launch::identity());
    refused_as_another_build(longer.spawn());
}

#[test]
fn a_hello_must_match_in_every_field() {
    let hello = |version, identity, probe, nonce| FromWorker::Hello {
        version,
        identity,
        probe,
        pid: 7,
        nonce,
    };
    let (id, probe) = (launch::identity(), code::probe_offset());
    assert!(check_hello(&hello(PROTOCOL_VERSION, id, probe, 9), 7, 9).is_ok());
    let refused = |hello: FromWorker, why: &str| {
        let err = check_hello(&hello, 7, 9).unwrap_err();
        assert!(
            matches!(&err, Error::Handshake(m) if m.contains(why)),
            "{why}: {err:?}"
        );
    };
    refused(hello(PROTOCOL_VERSION, id, probe + 16, 9), "probe function");
    refused(hello(PROTOCOL_VERSION, id, -probe, 9), "probe function");
    refused(hello(PROTOCOL_VERSION, id ^ 1, probe, 9), "different build");
    refused(hello(PROTOCOL_VERSION + 1, id, probe, 9), "protocol");
    refused(hello(PROTOCOL_VERSION, id, probe, 10), "unexpected hello");
    refused(FromWorker::InitDone, "expected a hello");
}
