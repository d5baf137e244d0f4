package annexremote

import (
	"context"
	"fmt"
	"strings"
)

// Key state: git-annex keeps a short value per key and remote in its branch
// (SETSTATE/GETSTATE), synced with the repository, so every clone sees what
// a remote recorded when it stored a key (docs/ANNEX-REMOTE.md "Key state").

type stateKey struct{}

// withState makes the job's channel available to GetState and SetState
// during a Backend call.
func withState(ctx context.Context, j *job) context.Context {
	return context.WithValue(ctx, stateKey{}, j)
}

func jobFrom(ctx context.Context, what string) (*job, error) {
	j, ok := ctx.Value(stateKey{}).(*job)
	if !ok {
		return nil, fmt.Errorf("%s: not called with the context of a Backend call: %w", what, ErrUnsupported)
	}
	return j, nil
}

// GetState returns the value git-annex keeps for key on this remote
// (GETSTATE), "" when none. ctx MUST be the context Serve passed to the
// Backend method (Store, Retrieve, CheckPresent, Remove or Whereis).
func GetState(ctx context.Context, key string) (string, error) {
	j, err := jobFrom(ctx, "GETSTATE")
	if err != nil {
		return "", err
	}
	if !validKey(key) {
		return "", fmt.Errorf("GETSTATE %.40q: %w", key, ErrBadLine)
	}
	v, err := j.question(ctx, "GETSTATE", key)
	if err != nil {
		return "", fmt.Errorf("asking git-annex for the state of %s: %w", key, err)
	}
	return v, nil
}

// SetState records value as key's state on this remote (SETSTATE); an empty
// value clears it. ctx is as for GetState.
func SetState(ctx context.Context, key, value string) error {
	j, err := jobFrom(ctx, "SETSTATE")
	if err != nil {
		return err
	}
	if !validKey(key) || strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("SETSTATE %.40q: %w", key, ErrBadLine)
	}
	if value == "" {
		return j.send("SETSTATE", key)
	}
	return j.send("SETSTATE", key, value)
}
