// Package sealed encrypts a manager's raft state at rest and manages the
// keys for it, including autolock.
//
// # Keys
//
// Raft log entries and snapshots are sealed with a data key (DEK,
// AES-256-GCM). The DEKs sit in the keyring file (KeyringFile, mode 0600,
// replaced atomically) wrapped by a key-encryption key (KEK). With
// autolock off the KEK is stored beside them, as in Docker Swarm: the
// encryption then protects copies of the raft files taken without the
// keyring (backups, a disk image of the data volume). With autolock on the
// KEK is the unlock key, BERTHKEY-1-<base64url>, which exists only in
// memory and with the operator; the file holds a one-way check value
// instead, so a wrong key is refused (ErrWrongKey) before any data is
// touched. A restarted autolocked manager opens its keyring locked and
// every operation needing a key fails with ErrLocked until Unlock.
//
// DEKs rotate (RotateDEK): the new one seals everything from then on, the
// old ones stay to open what they sealed. Every envelope names its key.
// The KEK rotates with RotateUnlockKey, SetAutolock and SetUnlockKey;
// only the keyring is rewritten, never the sealed data.
//
// # Raft stores
//
// NewLogStore and NewSnapshotStore wrap the stores handed to
// raft.NewRaft. The stable store (current term and vote) holds nothing
// secret and is used unwrapped. What stays in the clear on disk: entry
// index, term, type and append time; snapshot metadata (index, term, raft
// membership, size); the stable store. Per-entry authentication cannot
// detect a whole-file rollback or the deletion of entries: raft's own
// consistency checks and the cluster's other replicas are the defence
// there.
//
// # Wiring
//
//	kr, err := sealed.Open(dir)            // errors.Is(err, fs.ErrNotExist): new node, sealed.Create
//	if kr.Locked() { serve only unlock/info; kr.Unlock(key) }
//	logs := sealed.NewLogStore(bolt, kr)    // then raft.NewLogCache if wanted
//	snaps := sealed.NewSnapshotStore(fileSnaps, kr)
//	raft.NewRaft(conf, fsm, logs, bolt /* stable store */, snaps, trans)
//
// raft.NewRaft reads the log and snapshots at once, so the keyring must be
// unlocked before it is called.
package sealed
