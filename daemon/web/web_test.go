package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

func startServer(t *testing.T) (*Server, string) {
	t.Helper()
	var saved string
	s, err := Listen(Options{
		Addr:      "127.0.0.1:0",
		Status:    func() client.Status { return client.Status{PeerID: "me", Web: &client.WebInfo{URL: "secret"}} },
		SaveToken: func(b []byte) error { saved = string(b); return nil },
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go s.Serve(ctx)
	if strings.TrimSpace(saved) != s.token || len(s.token) != 64 {
		t.Fatalf("saved token %q, server token %q", saved, s.token)
	}
	return s, "http://" + s.ln.Addr().String()
}

func TestTokenTradedForCookie(t *testing.T) {
	s, base := startServer(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	// Without the token the data is refused.
	resp, err := c.Get(base + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status without token: %d", resp.StatusCode)
	}
	// A wrong token is refused.
	resp, err = c.Get(base + "/?token=" + strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	// The URL's token becomes a cookie, and the page loads without it.
	resp, err = c.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RawQuery != "" || !strings.Contains(string(page), "/static/app.js") {
		t.Fatalf("page: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	resp, err = c.Get(base + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	var st client.Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || st.PeerID != "me" || st.Web != nil {
		t.Fatalf("status with cookie: %+v, %v", st, err)
	}
	// A bearer header works too.
	req, _ := http.NewRequest("GET", base+"/api/status", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer: %d", resp.StatusCode)
	}
}

func TestForeignHostRefused(t *testing.T) {
	s, base := startServer(t)
	req, _ := http.NewRequest("GET", base+"/api/status", nil)
	req.Host = "evil.example:80"
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("foreign Host: %d", resp.StatusCode)
	}
}

func TestStaticEmbedded(t *testing.T) {
	_, base := startServer(t)
	for _, p := range []string{"/static/app.js", "/static/style.css"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) < 500 {
			t.Errorf("%s: %d, %d bytes", p, resp.StatusCode, len(b))
		}
	}
}
