package remote

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Reading `annex-swarm.home` without starting git (docs/ANNEX-REMOTE.md
// "Which daemon"): one `git config` process costs 35–60 ms of every start
// of the remote, i.e. of every git-annex command that uses it. The config
// files git reads are read here directly when they are plain; anything
// this reader does not model (includes, `-c` settings in the environment,
// per-worktree config, a repository of another user, a line it cannot
// parse) sends the caller to git, so the answer is always git's.

// maxGitConfig bounds one config file read here; a larger one is left to git.
const maxGitConfig = 1 << 20

// errAskGit says the config is not plain enough to read here.
var errAskGit = errors.New("git config: ask git")

// gitConfigEntry is one `key = value` of a config file.
type gitConfigEntry struct {
	section, sub, key, value string // section and key lower-cased
	hasSub                   bool
}

// readGitConfig returns the value git would print for `git config --get
// key` in dir ("" when unset), key being "section.name"; errAskGit when
// only git can tell.
func readGitConfig(dir, key string) (string, error) {
	section, name, ok := strings.Cut(strings.ToLower(key), ".")
	if !ok || strings.Contains(name, ".") {
		return "", errAskGit
	}
	for _, v := range []string{"GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_CONFIG", "GIT_CEILING_DIRECTORIES",
		"GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_COMMON_DIR", "GIT_CONFIG_SYSTEM"} {
		if os.Getenv(v) != "" {
			return "", errAskGit
		}
	}
	var files []string
	if os.Getenv("GIT_CONFIG_NOSYSTEM") == "" {
		files = append(files, "/etc/gitconfig")
	}
	if g := os.Getenv("GIT_CONFIG_GLOBAL"); g != "" {
		files = append(files, g)
	} else {
		h := os.Getenv("HOME")
		xdg := os.Getenv("XDG_CONFIG_HOME")
		if xdg == "" && h != "" {
			xdg = filepath.Join(h, ".config")
		}
		if xdg != "" {
			files = append(files, filepath.Join(xdg, "git", "config"))
		}
		if h != "" {
			files = append(files, filepath.Join(h, ".gitconfig"))
		}
	}
	gitDir, err := findGitDir(dir)
	if err != nil {
		return "", err
	}
	if gitDir != "" {
		files = append(files, filepath.Join(gitDir, "config"))
	}
	val := ""
	for i, f := range files {
		es, err := readConfigFile(f)
		if err != nil {
			return "", err
		}
		for _, e := range es {
			if e.section == "include" || e.section == "includeif" {
				return "", errAskGit
			}
			if i == len(files)-1 && gitDir != "" && e.section == "extensions" && e.key == "worktreeconfig" {
				return "", errAskGit
			}
			if e.section == section && !e.hasSub && e.key == name {
				val = e.value
			}
		}
	}
	return val, nil
}

// readConfigFile parses one config file; a missing one has no entries.
func readConfigFile(path string) ([]gitConfigEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, errAskGit
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxGitConfig+1))
	if err != nil || len(data) > maxGitConfig {
		return nil, errAskGit
	}
	return parseGitConfig(data)
}

// findGitDir finds the repository git would use in dir: $GIT_DIR, else
// the first of dir and its parents with a .git folder or file, or that is
// a bare repository. "" when there is none. A repository not owned by
// this user, or a linked worktree, is left to git.
func findGitDir(dir string) (string, error) {
	gd := os.Getenv("GIT_DIR")
	if gd == "" {
		d, err := filepath.Abs(dir)
		if err != nil {
			return "", errAskGit
		}
		for {
			dotGit := filepath.Join(d, ".git")
			if fi, err := os.Stat(dotGit); err == nil {
				if !fi.IsDir() {
					return "", errAskGit // a gitdir: file (worktree, submodule)
				}
				gd = dotGit
				break
			}
			if isBareRepo(d) {
				gd = d
				break
			}
			parent := filepath.Dir(d)
			if parent == d {
				return "", nil
			}
			d = parent
		}
	} else if !filepath.IsAbs(gd) {
		gd = filepath.Join(dir, gd)
	}
	fi, err := os.Stat(gd)
	if err != nil {
		return "", errAskGit
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
		return "", errAskGit // git's safe.directory rules decide
	}
	if _, err := os.Stat(filepath.Join(gd, "commondir")); err == nil {
		return "", errAskGit
	}
	return gd, nil
}

// isBareRepo reports whether d looks like a git directory.
func isBareRepo(d string) bool {
	for _, n := range []string{"HEAD", "objects", "refs", "config"} {
		if _, err := os.Stat(filepath.Join(d, n)); err != nil {
			return false
		}
	}
	return true
}

// parseGitConfig parses git's config format: [section], [section
// "subsection"] and [section.subsection] headers, `key = value` and bare
// `key` lines (printed as ""), comments, quoted values and escapes. A line
// continuation or anything malformed is errAskGit.
func parseGitConfig(data []byte) ([]gitConfigEntry, error) {
	var out []gitConfigEntry
	var cur gitConfigEntry
	inSection := false
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if n == 0 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			h, err := parseHeader(line)
			if err != nil {
				return nil, err
			}
			cur, inSection = h, true
			continue
		}
		if !inSection {
			return nil, errAskGit
		}
		k, v, hasValue := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !validConfigName(k) {
			return nil, errAskGit
		}
		e := cur
		e.key = strings.ToLower(k)
		e.value = "" // `git config --get` prints a bare key (true) as ""
		if hasValue {
			val, err := parseValue(v)
			if err != nil {
				return nil, err
			}
			e.value = val
		}
		out = append(out, e)
	}
	return out, nil
}

// parseHeader parses a section header line.
func parseHeader(line string) (gitConfigEntry, error) {
	end := strings.IndexByte(line, ']')
	if end < 0 {
		return gitConfigEntry{}, errAskGit
	}
	if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != '#' && rest[0] != ';' {
		return gitConfigEntry{}, errAskGit // a key on the header's line
	}
	inner := line[1:end]
	if name, sub, ok := strings.Cut(inner, " "); ok {
		sub = strings.TrimSpace(sub)
		if !validConfigName(name) || len(sub) < 2 || sub[0] != '"' || sub[len(sub)-1] != '"' || strings.ContainsAny(sub[1:len(sub)-1], "\"\\") {
			return gitConfigEntry{}, errAskGit
		}
		return gitConfigEntry{section: strings.ToLower(name), sub: sub[1 : len(sub)-1], hasSub: true}, nil
	}
	name, sub, dotted := strings.Cut(inner, ".")
	if !validConfigName(name) || strings.ContainsAny(inner, "\"\\ \t") {
		return gitConfigEntry{}, errAskGit
	}
	if dotted {
		return gitConfigEntry{section: strings.ToLower(name), sub: strings.ToLower(sub), hasSub: true}, nil
	}
	return gitConfigEntry{section: strings.ToLower(name)}, nil
}

// validConfigName reports whether s is a section or key name: letters,
// digits and '-' (and '.' in section names, handled by the caller).
func validConfigName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// parseValue parses the value after '=': surrounding whitespace trimmed,
// quotes removed, \n \t \b \\ \" unescaped, a comment cut off.
func parseValue(v string) (string, error) {
	var b strings.Builder
	quoted := false
	pending := "" // whitespace seen outside quotes, kept if more follows
	v = strings.TrimLeft(v, " \t")
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			if i+1 >= len(v) {
				return "", errAskGit // a line continuation
			}
			i++
			var r byte
			switch v[i] {
			case 'n':
				r = '\n'
			case 't':
				r = '\t'
			case 'b':
				r = '\b'
			case '\\', '"':
				r = v[i]
			default:
				return "", errAskGit
			}
			b.WriteString(pending)
			pending = ""
			b.WriteByte(r)
		case c == '"':
			b.WriteString(pending)
			pending = ""
			quoted = !quoted
		case !quoted && (c == '#' || c == ';'):
			return b.String(), nil
		case !quoted && (c == ' ' || c == '\t'):
			pending += string(c)
		default:
			b.WriteString(pending)
			pending = ""
			b.WriteByte(c)
		}
	}
	if quoted {
		return "", fmt.Errorf("%w: unterminated quote", errAskGit)
	}
	return b.String(), nil
}
