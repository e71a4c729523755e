//! The embedded store's write-ahead journal: a preallocated file of two halves that a
//! write reaches durably with one small synchronous write, so a push's 200 waits for that
//! and not for a B-tree commit; the tree (redb) is written behind it, a half at a time.
//!
//! The file's blocks are all written (zeros) when it is made, so a write overwrites
//! allocated blocks and its sync flushes data only, no filesystem metadata: on ext4 this is
//! a third of the CPU of a redb commit and a sixth of its wait. Each half holds the records
//! of one generation; generation `g` lives in half `g % 2`, from its start, each record at
//! a 4 KiB boundary so a write never rewrites a block an earlier one made durable. A record
//! is `magic, crc32, generation, length, version`, then its entries; reading a half stops
//! at the first record that is not whole, not of the generation sought, or not valid.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, bail, ensure};

/// Bytes of one half, in a new journal; an existing one keeps the size it was made with.
pub(crate) const HALF: u64 = 4 << 20;
const BLOCK: u64 = 4096;
/// Largest half accepted: it bounds what one record's length may ask to read.
const MOST: u64 = 1 << 30;
const MAGIC: u32 = 0x4a53_4d47;
const VERSION: u32 = 1;
const HEADER: usize = 24;

/// One change as the journal and the tree hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A chat's record, as its JSON.
    Put {
        chat_id: String,
        value: Vec<u8>,
    },
    Delete {
        chat_id: String,
    },
    Server {
        alias: String,
        pid: u64,
    },
}

/// The journal file and where the next record goes.
pub(crate) struct Journal {
    file: File,
    half: u64,
    /// The generation being written, in half `generation % 2`.
    pub(crate) generation: u64,
    offset: u64,
}

impl Journal {
    /// Opens `path`, made by `make`.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Journal> {
        // Each write returns once its data is on the disk (O_DSYNC): no separate fdatasync.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DSYNC)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        ensure!(
            len >= 2 * BLOCK && len % (2 * BLOCK) == 0 && len <= 2 * MOST,
            "{} is {len} bytes, not two halves of whole blocks of at most {MOST} bytes",
            path.display()
        );
        Ok(Journal { file, half: len / 2, generation: 0, offset: 0 })
    }

    /// The entries of generation `generation`, in order, or None when its half does not
    /// start with a record of it. Read record by record: memory never holds a half at once.
    pub(crate) fn read(&self, generation: u64) -> anyhow::Result<Option<Vec<Entry>>> {
        let base = self.half * (generation % 2);
        let mut entries = Vec::new();
        let mut offset = 0;
        let mut found = false;
        let mut header = [0; HEADER];
        while offset + HEADER as u64 <= self.half {
            self.file.read_exact_at(&mut header, base + offset)?;
            let Some((sum, length)) = header_of(&header, generation) else { break };
            let end = offset + HEADER as u64 + u64::from(length);
            if end > self.half {
                break;
            }
            let mut payload = vec![0; usize::try_from(length)?];
            self.file.read_exact_at(&mut payload, base + offset + HEADER as u64)?;
            if crc(generation, length, &payload) != sum {
                break;
            }
            entries.extend(decode(&payload).with_context(|| {
                format!("journal record of generation {generation} at {offset} is unreadable")
            })?);
            found = true;
            offset = end.next_multiple_of(BLOCK);
        }
        Ok(found.then_some(entries))
    }

    /// Starts writing `generation` at the start of its half.
    pub(crate) fn begin(&mut self, generation: u64) {
        self.generation = generation;
        self.offset = 0;
    }

    /// The largest payload a record can carry at all.
    pub(crate) fn capacity(&self) -> usize {
        usize::try_from(self.half).unwrap_or(usize::MAX) - HEADER
    }

    /// Whether a record of `payload` bytes fits in what is left of the half.
    pub(crate) fn fits(&self, payload: usize) -> bool {
        self.offset + (HEADER + payload) as u64 <= self.half
    }

    /// Writes one record; when this returns it is on the disk.
    pub(crate) fn append(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        ensure!(
            self.fits(payload.len()),
            "a journal record of {} bytes does not fit",
            payload.len()
        );
        let length = u32::try_from(payload.len())?;
        let mut bytes = Vec::with_capacity(HEADER + payload.len());
        bytes.extend_from_slice(&MAGIC.to_le_bytes());
        bytes.extend_from_slice(&crc(self.generation, length, payload).to_le_bytes());
        bytes.extend_from_slice(&self.generation.to_le_bytes());
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(payload);
        let at = self.half * (self.generation % 2) + self.offset;
        self.file.write_all_at(&bytes, at)?;
        self.offset = (self.offset + bytes.len() as u64).next_multiple_of(BLOCK);
        Ok(())
    }
}

/// Makes a journal of two `half`-byte halves of zeros (synced, then renamed into place),
/// replacing any file at `path`.
pub(crate) fn make(path: &Path, half: u64) -> anyhow::Result<()> {
    let dir = path.parent().context("the journal has no directory")?;
    let temporary = path.with_extension("new");
    let file = File::create(&temporary)?;
    let zeros = vec![0; 64 << 10];
    let mut written = 0;
    while written < 2 * half {
        let len = zeros.len().min(usize::try_from(2 * half - written)?);
        file.write_all_at(&zeros[..len], written)?;
        written += len as u64;
    }
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// A record header's checksum and payload length, when it is one of `generation`.
fn header_of(header: &[u8; HEADER], generation: u64) -> Option<(u32, u32)> {
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let stored_generation = u64::from(word(8)) | (u64::from(word(12)) << 32);
    let (magic, sum, length, version) = (word(0), word(4), word(16), word(20));
    (magic == MAGIC && stored_generation == generation && version == VERSION)
        .then_some((sum, length))
}

fn crc(generation: u64, length: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&generation.to_le_bytes());
    hasher.update(&length.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The bytes of `entries`, to be a record's payload.
pub(crate) fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let field = |bytes: &mut Vec<u8>, value: &[u8]| {
        bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
        bytes.extend_from_slice(value);
    };
    for entry in entries {
        match entry {
            Entry::Put { chat_id, value } => {
                bytes.push(1);
                field(&mut bytes, chat_id.as_bytes());
                field(&mut bytes, value);
            }
            Entry::Delete { chat_id } => {
                bytes.push(2);
                field(&mut bytes, chat_id.as_bytes());
            }
            Entry::Server { alias, pid } => {
                bytes.push(3);
                field(&mut bytes, alias.as_bytes());
                bytes.extend_from_slice(&pid.to_le_bytes());
            }
        }
    }
    bytes
}

/// The size of `entry` in a payload.
pub(crate) fn encoded_len(entry: &Entry) -> usize {
    match entry {
        Entry::Put { chat_id, value } => 9 + chat_id.len() + value.len(),
        Entry::Delete { chat_id } => 5 + chat_id.len(),
        Entry::Server { alias, .. } => 13 + alias.len(),
    }
}

fn decode(mut bytes: &[u8]) -> anyhow::Result<Vec<Entry>> {
    fn take<'a>(bytes: &mut &'a [u8], len: usize) -> anyhow::Result<&'a [u8]> {
        ensure!(bytes.len() >= len, "cut short");
        let (taken, rest) = bytes.split_at(len);
        *bytes = rest;
        Ok(taken)
    }
    fn field(bytes: &mut &[u8]) -> anyhow::Result<Vec<u8>> {
        let len = take(bytes, 4)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        Ok(take(bytes, usize::try_from(len)?)?.to_vec())
    }
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).context("a key that is not UTF-8");
    let mut entries = Vec::new();
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        entries.push(match tag {
            1 => Entry::Put { chat_id: text(field(&mut bytes)?)?, value: field(&mut bytes)? },
            2 => Entry::Delete { chat_id: text(field(&mut bytes)?)? },
            3 => {
                let alias = text(field(&mut bytes)?)?;
                let pid = take(&mut bytes, 8)?;
                let pid = u64::from_le_bytes(pid.try_into().context("cut short")?);
                Entry::Server { alias, pid }
            }
            other => bail!("an entry of unknown kind {other}"),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::{BLOCK, Entry, HALF, Journal, MAGIC, VERSION, decode, encode};

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let path = dir.join("sessions.journal");
        super::make(&path, HALF).expect("made");
        path
    }

    fn put(chat: &str, value: &str) -> Entry {
        Entry::Put { chat_id: chat.into(), value: value.as_bytes().to_vec() }
    }

    #[test]
    fn entries_come_back_as_written() {
        let entries = [
            put("c1", "{\"a\":1}"),
            Entry::Delete { chat_id: "c2".into() },
            Entry::Server { alias: "117".into(), pid: 4242 },
        ];
        let bytes = encode(&entries);
        assert_eq!(bytes.len(), entries.iter().map(super::encoded_len).sum::<usize>());
        assert_eq!(decode(&bytes).expect("decodes"), entries);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err(), "a cut payload is an error");
        assert!(decode(&[9]).is_err(), "an unknown kind is an error");
    }

    #[test]
    fn a_generation_is_read_back_up_to_its_first_broken_record() {
        let path = scratch("read");
        let mut journal = Journal::open(&path).expect("opens");
        journal.begin(7);
        for value in ["one", "two", "three"] {
            journal.append(&encode(&[put("c", value)])).expect("appends");
        }
        let read = |journal: &Journal, generation| journal.read(generation).expect("reads");
        assert_eq!(read(&journal, 7).expect("found").len(), 3);
        assert_eq!(read(&journal, 9), None, "the half holds generation 7, not 9");
        assert_eq!(read(&journal, 8), None, "the other half is empty");

        // The second record torn (generation 7 is in the second half): the first alone is read.
        let file = std::fs::OpenOptions::new().write(true).open(&path).expect("file");
        file.write_all_at(b"garbage", HALF + BLOCK + 30).expect("tears");
        let reopened = Journal::open(&path).expect("reopens");
        assert_eq!(read(&reopened, 7), Some(vec![put("c", "one")]));

        // Generation 9 overwrites half 1 from its start; 7's records after it are not 9's.
        let mut journal = reopened;
        journal.begin(9);
        journal.append(&encode(&[put("c", "four")])).expect("appends");
        assert_eq!(read(&journal, 9), Some(vec![put("c", "four")]));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn garbage_and_a_length_past_the_half_read_as_nothing() {
        let path = scratch("garbage");
        let journal = Journal::open(&path).expect("opens");
        let file = std::fs::OpenOptions::new().write(true).open(&path).expect("file");
        let write = |bytes: &[u8]| file.write_all_at(bytes, HALF).expect("writes");
        // Generation 1 is in the second half: a whole header whose length runs past it.
        let mut header = Vec::new();
        for word in [MAGIC, 0, 1, 0, u32::MAX, VERSION] {
            header.extend_from_slice(&word.to_le_bytes());
        }
        write(&header);
        assert_eq!(journal.read(1).expect("reads"), None);
        write(&(0..4096u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>());
        assert_eq!(journal.read(1).expect("reads"), None);
        std::fs::write(&path, vec![0; 5000]).expect("rewrites");
        assert!(Journal::open(&path).is_err(), "a file of another size is refused");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn a_record_that_does_not_fit_is_refused() {
        let path = scratch("full");
        let mut journal = Journal::open(&path).expect("opens");
        journal.begin(1);
        let big = vec![b'x'; journal.capacity() - 9 - 1];
        let entry = Entry::Put { chat_id: "c".into(), value: big };
        let payload = encode(&[entry]);
        assert!(journal.fits(payload.len()));
        journal.append(&payload).expect("fills the half");
        assert!(!journal.fits(1));
        assert!(journal.append(b"x").is_err());
        assert_eq!(journal.read(1).expect("reads").map(|e| e.len()), Some(1));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
