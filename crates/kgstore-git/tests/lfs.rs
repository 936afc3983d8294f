//! The LFS module against the real `git lfs` client: objects kgstore stores and the
//! pointers it writes are what git-lfs reads (`fsck`, `ls-files`, `pointer`, a clone
//! that smudges every file byte for byte), and kgstore's `check` reports what git-lfs
//! reports (a damaged or missing object, a non-canonical pointer, a raw blob under an
//! LFS pattern).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::path::Path;

use common::{Place, git, git_ok, have_git_lfs, lfs_home, noise, problems, push_files};
use kgstore_core::ErrorKind;
use kgstore_core::suite::thing;
use kgstore_git::lfs::{LfsObjects, LfsPatterns, Pointer, valid_oid};

#[test]
fn objects_and_pointers_kgstore_writes_are_read_by_the_real_git_lfs() {
    if !have_git_lfs("objects_and_pointers_kgstore_writes_are_read_by_the_real_git_lfs") {
        return;
    }
    let place = Place::new();
    let store = place.open();
    store.create_node(thing("scene-1")).unwrap();
    let objects = LfsObjects::new(&place.repo, true);
    let big = noise(200_000, 1);
    let small = noise(300, 2);
    let p_big = objects.put_bytes(&big).unwrap();
    let p_small = objects
        .put(&mut std::io::Cursor::new(small.clone()))
        .unwrap();
    assert_eq!(p_big, Pointer::of(&big));
    assert_eq!(objects.read(&p_big).unwrap(), big);
    push_files(
        &place,
        &[
            ("blobs/embeddings/scene-1.f32", p_big.encode().as_bytes()),
            ("blobs/small.bin", p_small.encode().as_bytes()),
            ("blobs/empty.bin", b""),
            ("scripts/pilot.fountain", b"INT. HOUSE - DAY\n"),
        ],
        "Add embeddings",
    );
    // kgstore reads the pushed commit and finds nothing wrong.
    assert_eq!(problems(&store), Vec::<String>::new());
    store.create_node(thing("scene-2")).unwrap();

    let home = lfs_home(&place);
    let fsck = git_ok(&home, &place.repo, &["lfs", "fsck", "main"]);
    assert!(fsck.contains("Git LFS fsck OK"), "{fsck}");
    let listed = git_ok(&home, &place.repo, &["lfs", "ls-files", "-l", "main"]);
    // (In a bare repository git-lfs marks every file "-": it has no work tree to look at.)
    assert!(
        listed.contains(&format!("{} - blobs/embeddings/scene-1.f32", p_big.oid)),
        "{listed}"
    );
    assert!(listed.contains(&p_small.oid), "{listed}");
    // `git lfs pointer` computes the same pointer from the original file.
    let original = place.dir.path().join("original.f32");
    std::fs::write(&original, &big).unwrap();
    let pointer_file = place.dir.path().join("pointer.txt");
    std::fs::write(&pointer_file, p_big.encode()).unwrap();
    git_ok(
        &home,
        place.dir.path(),
        &[
            "lfs",
            "pointer",
            &format!("--file={}", original.display()),
            &format!("--pointer={}", pointer_file.display()),
        ],
    );
    // A clone smudges every file byte for byte.
    let clone = place.clone_with(&home, "clone");
    assert_eq!(
        std::fs::read(clone.join("blobs/embeddings/scene-1.f32")).unwrap(),
        big
    );
    assert_eq!(std::fs::read(clone.join("blobs/small.bin")).unwrap(), small);
    assert_eq!(std::fs::read(clone.join("blobs/empty.bin")).unwrap(), b"");
    assert_eq!(
        std::fs::read(clone.join("scripts/pilot.fountain")).unwrap(),
        b"INT. HOUSE - DAY\n"
    );
    assert!(git_ok(&home, &clone, &["lfs", "fsck"]).contains("OK"));
    let out = git(&home, &place.repo, &["fsck", "--strict"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn what_git_lfs_rejects_kgstore_check_reports() {
    if !have_git_lfs("what_git_lfs_rejects_kgstore_check_reports") {
        return;
    }
    let place = Place::new();
    let store = place.open();
    let objects = LfsObjects::new(&place.repo, false);
    let good = noise(5000, 3);
    let pointer = objects.put_bytes(&good).unwrap();
    let missing = Pointer::of(b"never stored");
    let non_canonical = pointer.encode().trim_end().to_owned(); // no final newline
    push_files(
        &place,
        &[
            ("blobs/good.bin", pointer.encode().as_bytes()),
            ("blobs/missing.bin", missing.encode().as_bytes()),
            ("blobs/noncanonical.bin", non_canonical.as_bytes()),
            ("blobs/raw.bin", &noise(2000, 4)),
        ],
        "Add blobs, some bad",
    );
    let found = problems(&store);
    let about = |path: &str, needle: &str| {
        assert!(
            found.iter().any(|p| p.contains(path) && p.contains(needle)),
            "{path}: {needle} in {found:#?}"
        );
    };
    about("blobs/missing.bin", &missing.oid);
    about("blobs/missing.bin", "missing");
    about("blobs/noncanonical.bin", "not canonical");
    about("blobs/raw.bin", "not a pointer");
    assert!(
        !found.iter().any(|p| p.contains("blobs/good.bin")),
        "{found:#?}"
    );
    let home = lfs_home(&place);
    let fsck = git(&home, &place.repo, &["lfs", "fsck", "main"]);
    assert!(
        !fsck.status.success(),
        "git lfs fsck agrees something is wrong"
    );

    // A damaged object: both report it, naming the oid.
    let path = objects.path(&pointer.oid).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let found = problems(&store);
    assert!(
        found.iter().any(|p| p.contains("blobs/good.bin")
            && p.contains("damaged")
            && p.contains(&pointer.oid)),
        "{found:#?}"
    );
    let err = objects.read(&pointer).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.to_string().contains(&pointer.oid), "{err}");
    let mut reader = objects.open(&pointer).unwrap();
    let mut sink = Vec::new();
    let err = reader.read_to_end(&mut sink).unwrap_err();
    assert!(err.to_string().contains(&pointer.oid), "{err}");
    // Storing the content again replaces the damaged object.
    objects.put_bytes(&good).unwrap();
    assert_eq!(objects.read(&pointer).unwrap(), good);
}

#[test]
fn pointers_parse_as_git_lfs_parses_them() {
    let p = Pointer::of(b"hello\n");
    assert_eq!(
        Pointer::parse(p.encode().as_bytes()).unwrap(),
        (p.clone(), true)
    );
    // Accepted but not canonical: an old version URL, a missing final newline.
    let old = p.encode().replace(
        "https://git-lfs.github.com/spec/v1",
        "https://hawser.github.com/spec/v1",
    );
    assert_eq!(Pointer::parse(old.as_bytes()).unwrap(), (p.clone(), false));
    assert!(!Pointer::parse(p.encode().trim_end().as_bytes()).unwrap().1);
    for bad in [
        "".to_owned(),
        "oid sha256:abc\nversion https://git-lfs.github.com/spec/v1\nsize 1\n".to_owned(),
        p.encode().replace("sha256:", "sha1:"),
        p.encode().replace(&p.oid, &p.oid.to_uppercase()),
        p.encode().replace("size 6", "size six"),
        p.encode().replace("version https", "version ftp"),
        format!("{}{}", p.encode(), "x".repeat(1100)),
    ] {
        assert!(Pointer::parse(bad.as_bytes()).is_err(), "{bad:?}");
    }
    assert!(valid_oid(&p.oid));
    for oid in [
        "",
        "../../etc/passwd",
        &"A".repeat(64),
        &"a".repeat(63),
        &format!("{}/", &"a".repeat(63)),
    ] {
        assert!(!valid_oid(oid), "{oid}");
        assert!(Pointer::new(oid, 1).is_err());
    }
    let patterns = LfsPatterns::parse(
        "blobs/** filter=lfs diff=lfs merge=lfs -text\n\"with space/*.bin\" filter=lfs\n",
    );
    assert!(patterns.matches("blobs/x"));
    assert!(patterns.matches("with space/a.bin"));
    assert!(!patterns.matches("blobsx/y"));
    assert!(!patterns.matches("other/blobs/x"));
}

#[test]
fn a_symbolic_link_inside_lfs_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let git_dir = dir.path().join("kg.git");
    std::fs::create_dir(&git_dir).unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let objects = LfsObjects::new(&git_dir, false);
    let content = b"secret payload".to_vec();
    let pointer = Pointer::of(&content);
    // lfs/objects/aa -> a folder outside the repository.
    let fanout = git_dir.join("lfs/objects");
    std::fs::create_dir_all(&fanout).unwrap();
    std::os::unix::fs::symlink(&outside, fanout.join(&pointer.oid[..2])).unwrap();
    let err = objects.put_bytes(&content).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written outside"
    );
    assert!(objects.read(&pointer).is_err());
    // The whole lfs/ folder a link: refused too.
    let other = dir.path().join("other.git");
    std::fs::create_dir(&other).unwrap();
    std::os::unix::fs::symlink(&outside, other.join("lfs")).unwrap();
    assert!(LfsObjects::new(&other, false).put_bytes(&content).is_err());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(!Path::new(&outside.join("objects")).exists());
}
