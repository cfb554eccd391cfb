package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// VolumeStore keeps snapshots in a folder of a mounted volume: name.db and
// its description name.json. A snapshot is written to name.db.part,
// fsynced and renamed, so a crash never leaves a partial name.db.
type VolumeStore struct {
	// Dir is the folder on the mounted volume.
	Dir string
	// Location prefixes the names in locations: pvc://claim/path.
	Location string
}

var _ Store = (*VolumeStore)(nil)

// Check makes sure the folder exists and is writable.
func (v *VolumeStore) Check(context.Context) error {
	if err := os.MkdirAll(v.Dir, 0o750); err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	probe := filepath.Join(v.Dir, ".quorum-probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		return fmt.Errorf("%w: the folder is not writable: %w", ErrUnreachable, err)
	}
	return os.Remove(probe)
}

// Spool is name.db.part in the folder, on the same filesystem as the
// committed file, so committing is a rename.
func (v *VolumeStore) Spool(name string) string { return filepath.Join(v.Dir, name+".part") }

// Commit fsyncs the spooled file, renames it into place, and writes its
// description the same way.
func (v *VolumeStore) Commit(_ context.Context, spool string, meta Meta) (string, error) {
	meta.Location = strings.TrimSuffix(v.Location, "/") + "/" + meta.Name
	if err := syncFile(spool); err != nil {
		return "", err
	}
	if err := os.Rename(spool, filepath.Join(v.Dir, meta.Name)); err != nil {
		return "", err
	}
	data, err := json.Marshal(meta)
	if err != nil {
		return "", err
	}
	if err := writeAtomic(filepath.Join(v.Dir, strings.TrimSuffix(meta.Name, ".db")+".json"), data); err != nil {
		return "", err
	}
	return meta.Location, syncDir(v.Dir)
}

// List reads the descriptions of the series' committed snapshots.
func (v *VolumeStore) List(_ context.Context, series Series) ([]Meta, error) {
	entries, err := os.ReadDir(v.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	var out []Meta
	for _, e := range entries {
		if !series.Owns(e.Name()) {
			continue
		}
		meta, err := v.describe(e.Name())
		if err != nil {
			// A snapshot without a readable description was never
			// committed completely: it is not a backup.
			continue
		}
		out = append(out, meta)
	}
	sortNewestFirst(out)
	return out, nil
}

func (v *VolumeStore) describe(name string) (Meta, error) {
	data, err := os.ReadFile(filepath.Join(v.Dir, strings.TrimSuffix(name, ".db")+".json"))
	if err != nil {
		return Meta{}, err
	}
	var meta Meta
	if err := json.Unmarshal(data, &meta); err != nil {
		return Meta{}, err
	}
	return meta, nil
}

// Fetch copies a snapshot into w.
func (v *VolumeStore) Fetch(_ context.Context, name string, w io.Writer) (Meta, error) {
	meta, err := v.describe(name)
	if err != nil {
		return Meta{}, fmt.Errorf("%w: %s: %w", ErrNotFound, name, err)
	}
	src, err := os.Open(filepath.Join(v.Dir, name))
	if err != nil {
		return Meta{}, fmt.Errorf("%w: %s: %w", ErrNotFound, name, err)
	}
	defer func() { _ = src.Close() }()
	_, err = io.CopyBuffer(w, src, make([]byte, 1<<20))
	return meta, err
}

// Delete removes a snapshot and its description.
func (v *VolumeStore) Delete(_ context.Context, name string) error {
	for _, p := range []string{filepath.Join(v.Dir, strings.TrimSuffix(name, ".db")+".json"), filepath.Join(v.Dir, name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return syncDir(v.Dir)
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".part"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
