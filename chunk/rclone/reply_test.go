package rclone

import (
	"encoding/json"
	"testing"
)

func TestSpaceOf(t *testing.T) {
	i := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		a           about
		known       bool
		free, total int64
	}{
		{about{}, false, 0, 0},
		{about{Used: i(5)}, false, 0, 0},
		{about{Total: i(1 << 30), Used: i(1 << 20)}, true, 1<<30 - 1<<20, 1 << 30},
		{about{Total: i(10), Used: i(20)}, true, 0, 10},
		{about{Free: i(7), Total: i(10), Used: i(1)}, true, 7, 10},
	} {
		sp := spaceOf(tc.a)
		if sp.Known != tc.known || sp.Free != tc.free || sp.Total != tc.total {
			t.Errorf("spaceOf(%+v) = %+v", tc.a, sp)
		}
	}
}

// FuzzReplies: whatever rclone answers, an error reply becomes a bounded
// message and an about or listing reply decodes or fails, never panics.
func FuzzReplies(f *testing.F) {
	f.Add([]byte(`{"error":"object not found","status":404}`))
	f.Add([]byte(`{"total":1073741824,"used":5,"free":1073741819}`))
	f.Add([]byte(`{"list":[{"Path":"chunks/00/x","IsDir":false}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := replyError("operations/list", 500, b)
		if len(err.Error()) > 600 {
			t.Fatalf("unbounded error message: %d bytes", len(err.Error()))
		}
		var a about
		if json.Unmarshal(b, &a) == nil {
			if sp := spaceOf(a); sp.Free < 0 {
				t.Fatalf("negative free %d", sp.Free)
			}
		}
		var l struct {
			List []listEntry `json:"list"`
		}
		_ = json.Unmarshal(b, &l)
	})
}
