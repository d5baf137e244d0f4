// Package annexremote speaks git-annex's external special remote protocol
// (version 1, with the INFO, ASYNC and GETGITREMOTENAME extensions) as
// git-annex 10.20230126 does, on a pair of byte streams. It is pure protocol:
// the storage work is done by a Backend that the caller provides, and the
// package imports nothing of the daemon. The protocol as implemented is
// written down in docs/ANNEX-REMOTE.md.
//
//	err := annexremote.Serve(ctx, os.Stdin, os.Stdout, backend, annexremote.Options{
//		Configs: []annexremote.ConfigSetting{{Name: "home", Description: "annex-swarm home folder"}},
//		Logger:  slog.New(slog.NewTextHandler(os.Stderr, nil)),
//	})
//
// Lines are bounded (MaxLineBytes); replies of concurrent async jobs are
// written one whole line at a time. CHECKPRESENT answers FAILURE only when
// the Backend says Absent: an error or Unknown is answered UNKNOWN, so that
// git-annex never believes a copy is gone when it may not be.
package annexremote
