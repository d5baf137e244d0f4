package daemon

import (
	"strings"
	"testing"

	"github.com/annex-swarm/annex-swarm/rules"
)

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig("config.toml", []byte(`listen = ["/ip4/127.0.0.1/tcp/4101"]

[limits]
storage = "50GiB"
upload = "16MiB/s"
download = "64MiB/s"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listen) != 1 || cfg.Listen[0] != "/ip4/127.0.0.1/tcp/4101" {
		t.Errorf("listen = %v", cfg.Listen)
	}
	want := rules.Limits{Storage: 50 << 30, Upload: 16 << 20, Download: 64 << 20}
	if cfg.Limits != want {
		t.Errorf("limits = %+v, want %+v", cfg.Limits, want)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig("config.toml", []byte("# nothing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listen) != len(DefaultListen) || cfg.Limits != (rules.Limits{}) {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown top key", "listen = []\nlisten_on = [\"x\"]\n", `config.toml:2: unknown key "listen_on"`},
		{"unknown limit", "[limits]\nstorage = \"1GiB\"\nbandwidth = \"1MiB/s\"\n", `config.toml:3: unknown key "limits.bandwidth"`},
		{"bad size", "\n[limits]\nstorage = \"lots\"\n", "config.toml:3:"},
		{"bad rate", "[limits]\nupload = \"-5MiB/s\"\n", "config.toml:2:"},
		{"size as bool", "[limits]\nstorage = true\n", "config.toml:2:"},
		{"bad multiaddr", "listen = [\"/ip4/1.2.3/tcp/1\"]\n", `config.toml:1: listen address "/ip4/1.2.3/tcp/1"`},
		{"syntax", "listen = [\n", "config.toml:"},
		{"web on all interfaces", "[web]\nlisten = \"0.0.0.0:4180\"\n", `config.toml:2: [web] listen: "0.0.0.0:4180": only a loopback address`},
		{"metrics by name", "\n[metrics]\nlisten = \"localhost:9180\"\n", `config.toml:3: [metrics] listen: "localhost:9180": only a loopback`},
		{"web without port", "[web]\nlisten = \"127.0.0.1\"\n", `is not host:port`},
		{"web bad port", "[web]\nlisten = \"127.0.0.1:99999\"\n", `port "99999"`},
		{"web unknown key", "[web]\nport = 4180\n", `unknown key "web.port"`},
		{"too big", strings.Repeat("#", MaxConfigSize+1), "more than the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("config.toml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted %q", tc.doc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestParseConfigServers(t *testing.T) {
	cfg, err := ParseConfig("config.toml", []byte("[web]\nlisten = \"127.0.0.1:4180\"\n[metrics]\nlisten = \"[::1]:9180\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WebListen != "127.0.0.1:4180" || cfg.MetricsListen != "[::1]:9180" {
		t.Errorf("web %q metrics %q", cfg.WebListen, cfg.MetricsListen)
	}
	cfg, err = ParseConfig("config.toml", nil)
	if err != nil || cfg.WebListen != "" || cfg.MetricsListen != "" {
		t.Errorf("servers not off by default: %+v, %v", cfg, err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("listen = [\"/ip4/0.0.0.0/tcp/4101\"]\n[limits]\nstorage = \"50GiB\"\nupload = \"16MiB/s\"\n"))
	f.Add([]byte("[limits]\ndownload = \"1.5GB/s\"\n"))
	f.Add([]byte("x = 1\n"))
	f.Add([]byte("[web]\nlisten = \"127.0.0.1:4180\"\n[metrics]\nlisten = \"[::1]:0\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseConfig("fuzz.toml", b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if cfg.Limits.Storage < 0 || cfg.Limits.Upload < 0 || cfg.Limits.Download < 0 {
			t.Fatalf("negative limit accepted: %+v", cfg.Limits)
		}
		for _, a := range []string{cfg.WebListen, cfg.MetricsListen} {
			if a != "" && CheckLoopback(a) != nil {
				t.Fatalf("non-loopback server address accepted: %q", a)
			}
		}
		if len(cfg.Listen) == 0 && !strings.Contains(string(b), "listen") {
			t.Fatalf("defaults lost: %+v", cfg)
		}
	})
}
