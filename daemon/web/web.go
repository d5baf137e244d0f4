// Package web serves the daemon's status page: one embedded HTML page that
// polls a JSON endpoint and draws the swarm as this daemon sees it.
//
// # Access
//
// The page is served on a loopback address only (the config refuses any
// other). A random token, made at each start and written 0600 into the home,
// guards the data: the URL that `annex-swarm status --json` prints carries
// it as ?token=; the page trades it for an HttpOnly, SameSite=Strict cookie and
// redirects to itself without it. Scripts may send it as
// "Authorization: Bearer TOKEN" instead. Requests whose Host header is not
// the listen address are refused, so that a web site cannot reach the page
// through a rebound DNS name. docs/OBSERVING.md says more.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

//go:embed static
var static embed.FS

// CookieName is the cookie that carries the token once the page has it.
const CookieName = "annex_swarm_web"

// StatusFunc returns the daemon's current status.
type StatusFunc func() client.Status

// Options configure a status page server.
type Options struct {
	// Addr is the loopback host:port to listen on (port 0 picks one).
	Addr   string
	Status StatusFunc
	// SaveToken stores the new token where the local user can read it
	// (HOME/web.token, 0600).
	SaveToken func(token []byte) error
	Logger    *slog.Logger
}

// Server is a running status page.
type Server struct {
	ln     net.Listener
	srv    *http.Server
	token  string
	status StatusFunc
	log    *slog.Logger
}

// Listen makes a token, saves it, binds the address and prepares the server;
// Serve runs it.
func Listen(o Options) (*Server, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("making the web token: %w", err)
	}
	tok := hex.EncodeToString(raw)
	if err := o.SaveToken([]byte(tok + "\n")); err != nil {
		return nil, fmt.Errorf("saving the web token: %w", err)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening for the web page on %s: %w", o.Addr, err)
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{ln: ln, token: tok, status: o.Status, log: log}
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// URL is the page's address with the token, for the local user.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/?token=" + s.token }

// Serve runs until ctx ends.
func (s *Server) Serve(ctx context.Context) {
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(shut)
	}()
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("web server stopped", "err", err)
	}
}

func (s *Server) routes() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleIndex(sub))
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	mux.HandleFunc("GET /api/status", s.handleStatus)
	return s.guardHost(mux)
}

// guardHost refuses requests not addressed to the listen address itself.
func (s *Server) guardHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != s.ln.Addr().String() {
			http.Error(w, "wrong Host header: open the address that `annex-swarm status --json` prints", http.StatusMisdirectedRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// handleIndex serves the page; with a valid ?token= it sets the cookie and
// redirects to the bare address, so the token leaves the address bar.
func (s *Server) handleIndex(sub fs.FS) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query().Get("token"); q != "" {
			if !s.valid(q) {
				http.Error(w, "wrong token: the daemon makes a new one at each start; see `annex-swarm status --json`", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: CookieName, Value: q, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, sub, "index.html")
	}
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "no valid token: open the URL that `annex-swarm status --json` prints (web.url)"})
		return
	}
	st := s.status()
	st.Web = nil // the page has the token already; keep it out of the payload
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(st) // a write error means the page went away
}

func (s *Server) authorized(r *http.Request) bool {
	if c, err := r.Cookie(CookieName); err == nil && s.valid(c.Value) {
		return true
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return s.valid(tok)
	}
	return false
}

func (s *Server) valid(tok string) bool {
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1
}
