package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// bar draws a progress bar on stderr when it is a terminal, and nothing
// otherwise.
type bar struct {
	pb *progressbar.ProgressBar
	w  io.Writer
	op string
}

func newBar(w io.Writer, op string) *bar { return &bar{w: w, op: op} }

func (b *bar) update(p client.Progress) {
	if !isTerminal(b.w) {
		return
	}
	if b.pb == nil {
		total := p.Total
		if total == 0 {
			total = -1
		}
		b.pb = progressbar.NewOptions64(total, progressbar.OptionSetWriter(b.w), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription(b.op), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
	}
	_ = b.pb.Set64(p.Bytes)
}

func (b *bar) done() {
	if b.pb != nil {
		_ = b.pb.Finish()
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
