package daemon

import (
	"strings"
	"testing"
)

func TestParseConfigStore(t *testing.T) {
	cfg, err := ParseConfig("config.toml", []byte(`[store]
backend = "rclone"
remote = "dropbox:annex-swarm"
rclone_config = "/etc/annex-swarm/rclone.conf"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := StoreConfig{Backend: BackendRclone, Remote: "dropbox:annex-swarm", RcloneConfig: "/etc/annex-swarm/rclone.conf"}
	if cfg.Store != want {
		t.Errorf("store = %+v, want %+v", cfg.Store, want)
	}
	cfg, err = ParseConfig("config.toml", []byte("# nothing\n"))
	if err != nil || cfg.Store.Backend != BackendLocal {
		t.Errorf("default store = %+v, %v; want the local backend", cfg.Store, err)
	}
}

func TestParseConfigStoreErrors(t *testing.T) {
	for _, tc := range []struct{ toml, want string }{
		{"[store]\nbackend = \"s3\"\n", `config.toml:2: store backend "s3"`},
		{"[store]\nbackend = \"rclone\"\n", `store remote "": want "NAME:path"`},
		{"[store]\nbackend = \"rclone\"\nremote = \"nocolon\"\n", `config.toml:3: store remote "nocolon"`},
		{"[store]\nbackend = \"rclone\"\nremote = \"d:x\"\nrclone_config = \"rel.conf\"\n", `config.toml:4: store rclone_config "rel.conf": want an absolute path`},
		{"[store]\nremote = \"d:x\"\n", `config.toml:2: store remote and rclone_config need backend = "rclone"`},
		{"[store]\nbucket = \"x\"\n", `config.toml:2: unknown key "store.bucket"`},
	} {
		_, err := ParseConfig("config.toml", []byte(tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.toml, err, tc.want)
		}
	}
}
