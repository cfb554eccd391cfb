package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Verify checks a snapshot file as etcd's Maintenance.Snapshot streams it:
// the database followed by the sha256 of the database. It checks that
// trailer, then opens the database and reads its revision, key count and
// keyspace hash. It fills the fields of Meta it can learn from the file.
func Verify(path string) (Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return Meta{}, err
	}
	size := st.Size()
	if size <= sha256.Size {
		return Meta{}, fmt.Errorf("%w: %d bytes is too short to be a snapshot", ErrVerification, size)
	}

	whole, db := sha256.New(), sha256.New()
	if _, err := io.Copy(io.MultiWriter(whole, db), io.LimitReader(f, size-sha256.Size)); err != nil {
		return Meta{}, err
	}
	trailer := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, trailer); err != nil {
		return Meta{}, err
	}
	whole.Write(trailer)
	if !bytes.Equal(db.Sum(nil), trailer) {
		return Meta{}, fmt.Errorf("%w: the sha256 trailer does not match the data (truncated or corrupted)", ErrVerification)
	}

	rev, keys, hash, err := inspect(path)
	if err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrVerification, err)
	}
	return Meta{SizeBytes: size, SHA256: hex.EncodeToString(whole.Sum(nil)), Revision: rev, Keys: keys, Hash: hash}, nil
}

// SHA256File is the sha256 of a whole file, hex.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// inspect reads etcd's backend: the revision is the main revision of the
// last key in the "key" bucket (keys are 8-byte big-endian main revision,
// '_', 8-byte sub revision), the key count is the bucket's, and the hash is
// etcdutl's: crc32 (Castagnoli) over every bucket's name and pairs.
func inspect(path string) (rev, keys int64, hash uint32, err error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("opening the database: %w", err)
	}
	defer func() { _ = db.Close() }()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	err = db.View(func(tx *bolt.Tx) error {
		kb := tx.Bucket([]byte("key"))
		if kb == nil {
			return fmt.Errorf("no key bucket: not an etcd database")
		}
		if k, _ := kb.Cursor().Last(); len(k) >= 8 {
			rev = int64(binary.BigEndian.Uint64(k[:8]))
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			h.Write(name)
			return b.ForEach(func(k, v []byte) error {
				if bytes.Equal(name, []byte("key")) {
					keys++
				}
				h.Write(k)
				h.Write(v)
				return nil
			})
		})
	})
	return rev, keys, h.Sum32(), err
}
