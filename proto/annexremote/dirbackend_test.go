package annexremote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// dirBackend is a Backend that keeps each key as a file in a directory,
// given with initremote's directory=DIR. The test binary serves it as the
// remote git-annex-remote-fakeswarm (see TestMain) for the real git-annex.
type dirBackend struct {
	dir string // set by Prepare
}

var _ Backend = (*dirBackend)(nil)

func (d *dirBackend) InitRemote(ctx context.Context, cfg Config) error {
	dir, err := cfg.Get(ctx, "directory")
	if err != nil {
		return err
	}
	if dir == "" {
		return errors.New("directory=DIR is required")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}

func (d *dirBackend) Prepare(ctx context.Context, cfg Config) error {
	dir, err := cfg.Get(ctx, "directory")
	if err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("directory %q is not usable: %v", dir, err)
	}
	if name, err := cfg.GitRemoteName(ctx); err == nil {
		_ = cfg.Info(ctx, "serving remote "+name)
	}
	d.dir = dir
	return nil
}

func (d *dirBackend) path(key string) (string, error) {
	if filepath.Base(key) != key || strings.HasPrefix(key, ".") {
		return "", fmt.Errorf("key %q cannot be a file name", key)
	}
	return filepath.Join(d.dir, key), nil
}

// copyFile copies src to dst through a temporary file, reporting progress.
func copyFile(ctx context.Context, src, dst string, progress ProgressFunc) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	buf := make([]byte, 32<<10)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			out.Close()
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				out.Close()
				return err
			}
			done += int64(n)
			progress(done)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func (d *dirBackend) Store(ctx context.Context, key, file string, progress ProgressFunc) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	return copyFile(ctx, file, p, progress)
}

func (d *dirBackend) Retrieve(ctx context.Context, key, file string, progress ProgressFunc) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	return copyFile(ctx, p, file, progress)
}

func (d *dirBackend) CheckPresent(ctx context.Context, key string) (Presence, error) {
	p, err := d.path(key)
	if err != nil {
		return Presence{}, err
	}
	_, err = os.Stat(p)
	switch {
	case err == nil:
		return Present, nil
	case errors.Is(err, fs.ErrNotExist):
		return Absent, nil
	}
	return Unknown(err.Error()), nil
}

func (d *dirBackend) Remove(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (d *dirBackend) Whereis(ctx context.Context, key string) (string, error) {
	p, err := d.path(key)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", nil
	}
	return "file " + p, nil
}

func (d *dirBackend) Info(ctx context.Context) ([]InfoField, error) {
	return []InfoField{{Name: "directory", Value: d.dir}}, nil
}
