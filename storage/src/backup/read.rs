//! Reading a backup stream: one parser, checking the format and the checksum as it goes, feeding a
//! sink that either discards (verification) or writes into a database (restore).

use std::io::BufRead as _;

use super::*;

/// Where parsed entries go.
pub(super) trait Sink {
    fn tree(&mut self, name: &[u8]) -> Result<(), BackupError>;
    fn entry(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), BackupError>;
}

/// Checks only.
struct Discard;

impl Sink for Discard {
    fn tree(&mut self, _: &[u8]) -> Result<(), BackupError> {
        Ok(())
    }
    fn entry(&mut self, _: Vec<u8>, _: Vec<u8>) -> Result<(), BackupError> {
        Ok(())
    }
}

/// Writes into a database, in batches.
pub(super) struct DbSink<'a> {
    pub(super) db: &'a sled::Db,
    pub(super) tree: Option<sled::Tree>,
    pub(super) batch: sled::Batch,
    pub(super) pending: usize,
}

impl DbSink<'_> {
    pub(super) fn flush_batch(&mut self) -> Result<(), BackupError> {
        if let Some(tree) = &self.tree
            && self.pending > 0
        {
            tree.apply_batch(std::mem::take(&mut self.batch))
                .map_err(sled_err("write restored entries"))?;
        }
        self.pending = 0;
        Ok(())
    }
}

impl Sink for DbSink<'_> {
    fn tree(&mut self, name: &[u8]) -> Result<(), BackupError> {
        self.flush_batch()?;
        self.tree = Some(open_tree(self.db, name)?);
        Ok(())
    }

    fn entry(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), BackupError> {
        self.batch.insert(key, value);
        self.pending += 1;
        if self.pending >= 1024 {
            self.flush_batch()?;
        }
        Ok(())
    }
}

fn read_array<const N: usize>(r: &mut impl Read, what: &str) -> Result<[u8; N], BackupError> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => BackupError::Format(format!("the file ends inside {what} (truncated?)")),
        _ => io_err("read the backup")(e),
    })?;
    Ok(b)
}

fn read_vec(r: &mut impl Read, len: u64, what: &str) -> Result<Vec<u8>, BackupError> {
    let mut v = Vec::new();
    r.take(len).read_to_end(&mut v).map_err(io_err("read the backup"))?;
    if v.len() as u64 != len {
        return Err(BackupError::Format(format!("the file ends inside {what} (truncated?)")));
    }
    Ok(v)
}

/// Reads a whole backup from `input`, handing trees and entries to `sink`, and checks the format
/// and the checksum.
pub(super) fn parse<R: Read>(input: R, sink: &mut impl Sink) -> Result<BackupInfo, BackupError> {
    let mut r = HashingReader {
        inner: input,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let magic: [u8; 8] = read_array(&mut r, "the header")?;
    if &magic != MAGIC {
        return Err(BackupError::Format(
            "it does not start with the bzzz backup magic".into(),
        ));
    }
    let version = u32::from_be_bytes(read_array(&mut r, "the header")?);
    if version != FORMAT_VERSION {
        return Err(BackupError::Format(format!(
            "format version {version}; this build reads version {FORMAT_VERSION}"
        )));
    }
    let created_unix_ms = u64::from_be_bytes(read_array(&mut r, "the header")?);
    let source_len = u16::from_be_bytes(read_array(&mut r, "the header")?) as usize;
    if source_len > MAX_SOURCE {
        return Err(BackupError::Format(format!("source of {source_len} bytes")));
    }
    let source = name_text(&read_vec(&mut r, source_len as u64, "the header")?);

    let mut trees: Vec<TreeSummary> = Vec::new();
    let mut names = BTreeSet::new();
    let mut current: Option<(Vec<u8>, u64)> = None;
    let mut total = 0u64;
    loop {
        let [tag] = read_array::<1>(&mut r, "a section tag")?;
        match (tag, &mut current) {
            (TAG_TREE, None) => {
                let len = u32::from_be_bytes(read_array(&mut r, "a tree name")?) as usize;
                if len == 0 || len > MAX_TREE_NAME {
                    return Err(BackupError::Format(format!("tree name of {len} bytes")));
                }
                let name = read_vec(&mut r, len as u64, "a tree name")?;
                if !names.insert(name.clone()) {
                    return Err(BackupError::Format(format!("tree {} appears twice", name_text(&name))));
                }
                if names.len() as u32 > MAX_TREES {
                    return Err(BackupError::Format(format!("more than {MAX_TREES} trees")));
                }
                sink.tree(&name)?;
                current = Some((name, 0));
            }
            (TAG_ENTRY, Some((name, count))) => {
                let what = format!("an entry of tree {}", name_text(name));
                let klen = u32::from_be_bytes(read_array(&mut r, &what)?) as usize;
                if klen > MAX_KEY_BYTES {
                    return Err(BackupError::Format(format!("{what} has a key of {klen} bytes")));
                }
                let key = read_vec(&mut r, klen as u64, &what)?;
                let vlen = u64::from_be_bytes(read_array(&mut r, &what)?);
                let value = read_vec(&mut r, vlen, &what)?;
                sink.entry(key, value)?;
                *count += 1;
            }
            (TAG_TREE_END, Some((name, count))) => {
                let declared = u64::from_be_bytes(read_array(&mut r, "a tree end")?);
                if declared != *count {
                    return Err(BackupError::Format(format!(
                        "tree {} declares {declared} entries but holds {count}",
                        name_text(name)
                    )));
                }
                total += *count;
                trees.push(TreeSummary {
                    name: name_text(name),
                    entries: *count,
                });
                current = None;
            }
            (TAG_END, None) => {
                let declared = u32::from_be_bytes(read_array(&mut r, "the end marker")?);
                if declared as usize != trees.len() {
                    return Err(BackupError::Format(format!(
                        "the end marker declares {declared} trees but the file holds {}",
                        trees.len()
                    )));
                }
                break;
            }
            (tag, _) => {
                return Err(BackupError::Format(format!(
                    "unexpected section tag 0x{tag:02x} at byte {}",
                    r.bytes - 1
                )));
            }
        }
    }
    let found: [u8; 32] = r.hasher.clone().finalize().into();
    let mut expected = [0u8; 32];
    r.inner.read_exact(&mut expected).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => BackupError::Format("the file ends inside its checksum (truncated?)".into()),
        _ => io_err("read the backup")(e),
    })?;
    if found != expected {
        return Err(BackupError::Checksum {
            expected: hex::encode(expected),
            found: hex::encode(found),
        });
    }
    let mut extra = [0u8; 1];
    if r.inner.read(&mut extra).map_err(io_err("read the backup"))? != 0 {
        return Err(BackupError::Format("data after the checksum".into()));
    }
    Ok(BackupInfo {
        format_version: version,
        created_unix_ms,
        source,
        trees,
        entries: total,
        bytes: r.bytes + 32,
        sha256: hex::encode(found),
    })
}

/// Reads a whole backup and checks its format and checksum; writes nothing.
pub fn verify<R: Read>(input: R) -> Result<BackupInfo, BackupError> {
    parse(input, &mut Discard)
}

/// Verifies the backup file at `path` (see [`verify`]). When the structure does not parse, the
/// error also says whether the file's trailing checksum matches the rest: a damaged byte can land
/// on a length or a marker, and the structural error alone would hide that the file is damaged.
pub fn verify_file(path: &Path) -> Result<BackupInfo, BackupError> {
    let f = std::fs::File::open(path).map_err(io_err(format!("open {}", path.display())))?;
    match verify(io::BufReader::with_capacity(1 << 20, f)) {
        Err(BackupError::Format(reason)) => Err(BackupError::Format(match checksum_mismatch(path)? {
            Some(BackupError::Checksum { expected, found }) => format!(
                "{reason}; its checksum does not match either (the file says {expected}, its content hashes to {found}): the file is damaged or truncated"
            ),
            _ => reason,
        })),
        other => other,
    }
}

/// A [`BackupError::Checksum`] when the file's trailing 32 bytes differ from the SHA-256 of
/// everything before them.
fn checksum_mismatch(path: &Path) -> Result<Option<BackupError>, BackupError> {
    let len = std::fs::metadata(path)
        .map_err(io_err(format!("stat {}", path.display())))?
        .len();
    if len < 32 {
        return Ok(None);
    }
    let mut f = std::fs::File::open(path).map_err(io_err(format!("open {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut body = io::BufReader::with_capacity(1 << 20, (&mut f).take(len - 32));
    loop {
        let chunk = body.fill_buf().map_err(io_err("read the backup"))?;
        if chunk.is_empty() {
            break;
        }
        hasher.update(chunk);
        let n = chunk.len();
        body.consume(n);
    }
    drop(body);
    let mut stored = [0u8; 32];
    f.read_exact(&mut stored).map_err(io_err("read the backup"))?;
    let found: [u8; 32] = hasher.finalize().into();
    Ok((found != stored).then(|| BackupError::Checksum {
        expected: hex::encode(stored),
        found: hex::encode(found),
    }))
}
