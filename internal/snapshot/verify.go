package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Digest hashes a snapshot stream as it is written, so no second pass over
// the file is needed: the sha256 of the whole stream, and of the database
// it carries (everything but the 32-byte sha256 trailer etcd appends).
type Digest struct {
	whole, db hash.Hash
	tail      [sha256.Size]byte
	tailLen   int
	size      int64
}

// NewDigest starts a digest.
func NewDigest() *Digest { return &Digest{whole: sha256.New(), db: sha256.New()} }

// Write hashes p; the last 32 bytes seen are held back from the database
// hash until more data shows they are not the trailer.
func (d *Digest) Write(p []byte) (int, error) {
	d.whole.Write(p)
	d.size += int64(len(p))
	if len(p) >= sha256.Size {
		d.db.Write(d.tail[:d.tailLen])
		d.db.Write(p[:len(p)-sha256.Size])
		d.tailLen = copy(d.tail[:], p[len(p)-sha256.Size:])
		return len(p), nil
	}
	joined := append(d.tail[:d.tailLen:d.tailLen], p...)
	if over := len(joined) - sha256.Size; over > 0 {
		d.db.Write(joined[:over])
		joined = joined[over:]
	}
	d.tailLen = copy(d.tail[:], joined)
	return len(p), nil
}

// Check says whether the stream ended with the sha256 of what came before,
// and returns the sha256 of the whole stream, hex.
func (d *Digest) Check() (string, error) {
	if d.size <= sha256.Size {
		return "", fmt.Errorf("%w: %d bytes is too short to be a snapshot", ErrVerification, d.size)
	}
	if !bytes.Equal(d.db.Sum(nil), d.tail[:d.tailLen]) {
		return "", fmt.Errorf("%w: the sha256 trailer does not match the data (truncated or corrupted)", ErrVerification)
	}
	return hex.EncodeToString(d.whole.Sum(nil)), nil
}

// Size is the number of bytes hashed.
func (d *Digest) Size() int64 { return d.size }

// Verify checks a snapshot file as etcd's Maintenance.Snapshot streams it:
// the database followed by the sha256 of the database. It checks that
// trailer, then opens the database and reads its revision, key count and
// keyspace hash. It fills the fields of Meta it can learn from the file.
func Verify(path string) (Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, err
	}
	d := NewDigest()
	_, err = io.CopyBuffer(d, f, make([]byte, 1<<20))
	_ = f.Close()
	if err != nil {
		return Meta{}, err
	}
	return VerifyDigested(path, d)
}

// VerifyDigested finishes the verification of a file whose bytes went
// through d as it was written: the trailer, then the database.
func VerifyDigested(path string, d *Digest) (Meta, error) {
	sum, err := d.Check()
	if err != nil {
		return Meta{}, err
	}
	rev, keys, hash, err := inspect(path)
	if err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrVerification, err)
	}
	return Meta{SizeBytes: d.Size(), SHA256: sum, Revision: rev, Keys: keys, Hash: hash}, nil
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
