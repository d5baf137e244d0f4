package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// scrape reads a Prometheus text exposition into sample → value
// ("name{labels}" as exposed).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricsMoveWithPutAndGet scrapes real daemons' Prometheus endpoints
// before and after a put and a get, and checks that the values moved.
func TestMetricsMoveWithPutAndGet(t *testing.T) {
	c := harness.New(t, bin, 2, harness.Options{
		Config: "[metrics]\nlisten = \"127.0.0.1:0\"\n",
		Args:   []string{"--sync-interval", "1s", "--repair-interval", "1s"},
	})
	c.FormSwarm(t, harness.SwarmOptions{Copies: 2, CopiesMin: 2})
	up, other := c.Nodes[0], c.Nodes[1]
	upURL, otherURL := up.StatusJSON().MetricsURL, other.StatusJSON().MetricsURL
	if !strings.HasPrefix(upURL, "http://127.0.0.1:") || !strings.HasSuffix(upURL, "/metrics") {
		t.Fatalf("status metrics_url = %q", upURL)
	}
	harness.WaitFor(t, time.Minute, "both storage members counted connected", func() bool {
		return scrape(t, upURL)[`annex_swarm_members{connected="true",role="storage"}`] == 2
	})
	before, otherBefore := scrape(t, upURL), scrape(t, otherURL)
	for _, name := range []string{
		`annex_swarm_rules_version{swarm="test",swarm_id="` + up.StatusJSON().Swarm.ID + `"}`,
		`annex_swarm_store_used_bytes`, `annex_swarm_refused_connections_total`,
		`annex_swarm_chunk_payload_bytes_total{direction="sent"}`,
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("scrape lacks %s", name)
		}
	}

	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeRandomFile(t, src, 3<<20, 7)
	root := harness.LastLine(up.MustCLI("put", src))
	other.MustCLI("get", root, "-o", filepath.Join(dir, "out"))

	after, otherAfter := scrape(t, upURL), scrape(t, otherURL)
	moved := func(name string, b, a map[string]float64, by float64) {
		t.Helper()
		if a[name]-b[name] < by {
			t.Errorf("%s went from %v to %v, want a rise of at least %v", name, b[name], a[name], by)
		}
	}
	moved(`annex_swarm_store_used_bytes`, before, after, 3<<20)
	moved(`annex_swarm_store_manifests`, before, after, 1)
	moved(`annex_swarm_chunk_payload_bytes_total{direction="sent"}`, before, after, 3<<20)
	moved(`annex_swarm_chunk_payload_bytes_total{direction="received"}`, otherBefore, otherAfter, 3<<20)
	moved(`annex_swarm_control_request_duration_seconds_count{endpoint="POST /v1/put"}`, before, after, 1)
	moved(`annex_swarm_control_request_duration_seconds_count{endpoint="POST /v1/get"}`, otherBefore, otherAfter, 1)
	moved(`annex_swarm_control_request_duration_seconds_count{endpoint="GET /v1/status"}`, before, after, 1)
	// The repair round counts the content at target on the uploader.
	harness.WaitFor(t, time.Minute, "the content counted at target", func() bool {
		m := scrape(t, upURL)
		return m[`annex_swarm_replication_contents{state="at_target"}`] == 1 && m[`annex_swarm_replication_contents{state="held"}`] == 1
	})
	t.Logf("uploader: store used %v → %v bytes, sent %v → %v; other received %v → %v",
		before[`annex_swarm_store_used_bytes`], after[`annex_swarm_store_used_bytes`],
		before[`annex_swarm_chunk_payload_bytes_total{direction="sent"}`], after[`annex_swarm_chunk_payload_bytes_total{direction="sent"}`],
		otherBefore[`annex_swarm_chunk_payload_bytes_total{direction="received"}`], otherAfter[`annex_swarm_chunk_payload_bytes_total{direction="received"}`])
}

// chromium is a headless browser run: the flags that work in a container.
type chromium struct {
	path, profile string
}

func newChromium(t *testing.T) chromium {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it): the web page test needs a real browser")
	}
	return chromium{path: p, profile: t.TempDir()}
}

// run loads url, lets its scripts run for 10 s of virtual time, and returns
// stdout (the DOM with --dump-dom).
func (c chromium) run(t *testing.T, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + c.profile, "--window-size=1280,1100", "--virtual-time-budget=10000"}, extra...)
	cmd := exec.CommandContext(ctx, c.path, append(args, url)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, errb.String())
	}
	return out.String()
}

// rowState is how the page's member table marks a member's state.
func rowState(name, state string) string {
	return fmt.Sprintf(`<tr data-member="%s" data-state="%s">`, name, state)
}

// TestWebPageInChromium loads the status page of a real daemon in a real
// headless Chromium, checks it shows the members, kills a member with
// kill -9, and checks the page shows it gone. Screenshots are kept in the
// test's artifact directory (go test -artifacts -outputdir DIR).
func TestWebPageInChromium(t *testing.T) {
	br := newChromium(t)
	args := harness.Options{Args: []string{"--sync-interval", "1s", "--repair-interval", "1s"}}
	webbed := args
	webbed.Config = "[web]\nlisten = \"127.0.0.1:0\"\n"
	c := harness.Of(bin,
		harness.NewNode(t, bin, "alpha", webbed),
		harness.NewNode(t, bin, "beta", args),
		harness.NewNode(t, bin, "gamma", args))
	c.FormSwarm(t, harness.SwarmOptions{Name: "family", Copies: 3, CopiesMin: 2,
		MemberArgs: map[int][]string{1: {"--storage", "10GiB", "--upload", "8MiB/s"}}})
	alpha, gamma := c.Nodes[0], c.Nodes[2]
	src := filepath.Join(t.TempDir(), "photo")
	writeRandomFile(t, src, 2<<20, 3)
	alpha.MustCLI("put", src)

	st := alpha.StatusJSON()
	if st.Web == nil || !strings.HasPrefix(st.Web.URL, "http://127.0.0.1:") || !strings.Contains(st.Web.URL, "/?token=") {
		t.Fatalf("status web = %+v", st.Web)
	}
	tok, err := os.ReadFile(filepath.Join(alpha.Home, "web.token"))
	if err != nil || !strings.HasSuffix(st.Web.URL, strings.TrimSpace(string(tok))) {
		t.Fatalf("web.token %q does not match the URL: %v", tok, err)
	}
	if fi, err := os.Stat(filepath.Join(alpha.Home, "web.token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("web.token mode: %v %v", fi, err)
	}
	waitConnected := func(name string, want bool) {
		harness.WaitFor(t, time.Minute, fmt.Sprintf("%s connected=%v", name, want), func() bool {
			for _, m := range alpha.StatusJSON().Members {
				if m.Name == name {
					return m.Connected == want
				}
			}
			return false
		})
	}
	waitConnected("beta", true)
	waitConnected("gamma", true)

	art := t.ArtifactDir()
	dom := br.run(t, st.Web.URL, "--dump-dom")
	for _, want := range []string{
		`data-loaded="true"`, rowState("alpha", "self"), rowState("beta", "connected"), rowState("gamma", "connected"),
		`data-member="gamma" data-state="connected"`, // the node in the picture
		fmt.Sprintf("rules version %d", st.Swarm.Version), "3 of 3 members reachable", "10.0 GiB", "8.0 MiB/s",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("page DOM:\n%s", dom)
	}
	br.run(t, st.Web.URL, "--screenshot="+filepath.Join(art, "web-status-before.png"))

	gamma.Kill()
	waitConnected("gamma", false)
	dom = br.run(t, st.Web.URL, "--dump-dom")
	for _, want := range []string{rowState("gamma", "disconnected"), rowState("beta", "connected"), "2 of 3 members reachable"} {
		if !strings.Contains(dom, want) {
			t.Errorf("after kill -9 of gamma, page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("page DOM:\n%s", dom)
	}
	shot := filepath.Join(art, "web-status-after-kill.png")
	br.run(t, st.Web.URL, "--screenshot="+shot)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10<<10 {
		t.Fatalf("screenshot %s: %v %v", shot, fi, err)
	}
	t.Logf("screenshots in %s", art)

	// Without the token the data stays closed.
	bare := strings.SplitN(st.Web.URL, "?", 2)[0]
	resp, err := http.Get(bare + "api/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("api/status without the token: %s", resp.Status)
	}
}

// TestTransferShownWhileRunning slows a get with a download limit and checks
// that the status, the metrics and the page show it in flight with its
// progress; a screenshot of the page mid-transfer is kept as an artifact.
func TestTransferShownWhileRunning(t *testing.T) {
	args := harness.Options{Args: []string{"--sync-interval", "1s"}}
	slow := args
	slow.Config = "[web]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[limits]\ndownload = \"512KiB/s\"\n"
	c := harness.Of(bin, harness.NewNode(t, bin, "server", args), harness.NewNode(t, bin, "laptop", slow))
	c.FormSwarm(t, harness.SwarmOptions{Copies: 1, CopiesMin: 1, Roles: map[int]string{1: "client"}})
	server, laptop := c.Nodes[0], c.Nodes[1]
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeRandomFile(t, src, 24<<20, 5)
	root := harness.LastLine(server.MustCLI("put", src))

	got := make(chan harness.Result, 1)
	go func() { got <- laptop.CLI("get", root, "-o", filepath.Join(dir, "out")) }()
	var seen bool
	harness.WaitFor(t, time.Minute, "the get listed in flight with progress", func() bool {
		for _, tr := range laptop.StatusJSON().Transfers {
			if tr.Op == "get" && tr.Bytes > 0 && tr.Bytes < tr.Total && tr.Sources[server.PeerID] > 0 {
				seen = true
			}
		}
		return seen
	})
	st := laptop.StatusJSON()
	if m := scrape(t, st.MetricsURL); m[`annex_swarm_transfers_in_progress{op="get"}`] != 1 {
		t.Errorf("transfers_in_progress{op=get} = %v during the get", m[`annex_swarm_transfers_in_progress{op="get"}`])
	}
	br := newChromium(t)
	dom := br.run(t, st.Web.URL, "--dump-dom")
	if !strings.Contains(dom, `data-op="get"`) || !strings.Contains(dom, "sources: server") {
		t.Errorf("page does not show the get in flight:\n%s", dom)
	}
	shot := filepath.Join(t.ArtifactDir(), "web-status-transfer.png")
	br.run(t, st.Web.URL, "--screenshot="+shot)
	t.Logf("screenshot mid-transfer: %s", shot)
	select {
	case r := <-got:
		if r.Code != 0 {
			t.Fatalf("get: exit %d: %s", r.Code, r.Stderr)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("get did not end")
	}
	if n := len(laptop.StatusJSON().Transfers); n != 0 {
		t.Errorf("%d transfers listed after the get ended", n)
	}
}
