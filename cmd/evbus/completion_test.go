package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersion: the in-process command prints the module and Go version;
// versionText prints the VCS settings as they are; and the built binary
// prints the revision its build information holds (go version -m reads
// the same), or says there is none.
func TestVersion(t *testing.T) {
	r := cliEnv(t, nil, "", "version").ok(t, "version")
	if !strings.Contains(r.out, "module    github.com/evbus/evbus\n") || !strings.Contains(r.out, "go        "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version printed:\n%s", r.out)
	}
	bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/evbus/evbus", Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got := versionText(bi); !strings.HasPrefix(got, "evbus     v1.4.0\nmodule    github.com/evbus/evbus\nrevision  0123456789abcdef0123456789abcdef01234567 (2026-12-01T10:00:00Z), with uncommitted changes\n") {
		t.Errorf("versionText = %q", got)
	}

	bin := buildEvbus(t)
	meta, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	revision, version := "unknown", ""
	for _, line := range strings.Split(string(meta), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			revision = strings.TrimPrefix(f[1], "vcs.revision=")
		case len(f) >= 3 && f[0] == "mod":
			version = f[2]
		}
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "evbus     "+version+"\n") || !strings.Contains(string(out), "revision  "+revision) {
		t.Errorf("evbus version printed:\n%s\nwant version %s, revision %s (go version -m)", out, version, revision)
	}
}

// TestCompletion: each script parses in its shell, and completes commands,
// subcommands, a command's own flags (not another's) and files.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		if _, err := exec.LookPath(shell); err != nil {
			t.Fatalf("this test runs the %s completion script in %s (make test installs it: apt-get install %s): %v", shell, shell, shell, err)
		}
	}
	dir := t.TempDir()
	for _, f := range []string{"order_placed.avsc", "other.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := func(shell string) string {
		r := cliEnv(t, nil, "", "completion", shell).ok(t, "completion "+shell)
		p := filepath.Join(dir, "evbus."+shell)
		if err := os.WriteFile(p, []byte(r.out), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(shell, "-n", p).CombinedOutput(); err != nil {
			t.Fatalf("%s -n: %v\n%s", shell, err, out)
		}
		return p
	}
	cases := []struct {
		line string // the words, the last one being completed
		want string // the candidates, space-separated
	}{
		{"evbus d", "dev dlt"},
		{"evbus dlt r", "replay reveal"},
		{"evbus dlt p", "park"},
		{"evbus dlt discard --fi", "--fingerprint"},
		{"evbus topic create orders --pa", "--partitions"},
		{"evbus schema check --br", ""}, // schema check takes no Kafka flag
		{"evbus schema check --al", "--allow-new"},
		{"evbus completion z", "zsh"},
		{"evbus schema check ord", "order_placed.avsc"},
	}

	bash := script("bash")
	var prog strings.Builder
	prog.WriteString("source " + bash + "\ncd " + dir + "\n")
	for _, c := range cases {
		prog.WriteString(`COMP_WORDS=(` + c.line + `); [[ "` + c.line + `" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMPREPLY=(); _evbus; echo "${COMPREPLY[*]}"` + "\n")
	}
	checkCompletions(t, "bash", exec.Command("bash", "--norc", "-c", prog.String()), cases)

	// zsh: the completion system's functions are stubbed to print what
	// the script offers.
	zsh := script("zsh")
	prog.Reset()
	prog.WriteString(`compdef() { }
_describe() { local -a items; items=("${(@P)4}"); print -rn -- "${items[@]%%:*}"; print }
compadd() { if [[ $1 == -a ]]; then print -rn -- "${(@P)2}"; else print -rn -- "$@"; fi; print }
_files() { print -rn -- ${PREFIX}*(N); print }
source ` + zsh + "\ncd " + dir + "\n")
	for _, c := range cases {
		words := strings.Fields(c.line)
		prefix := words[len(words)-1]
		// zsh hands the candidates to compadd, which filters by PREFIX.
		prog.WriteString(`words=(` + c.line + `); CURRENT=${#words}; PREFIX=` + prefix + `; out=$(_evbus); print -r -- ${(j: :)${(M)${(s: :)out}:#${PREFIX}*}}` + "\n")
	}
	checkCompletions(t, "zsh", exec.Command("zsh", "-f", "-c", prog.String()), cases)
}

func checkCompletions(t *testing.T, shell string, cmd *exec.Cmd, cases []struct{ line, want string }) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(got) != len(cases) {
		t.Fatalf("%s printed %d lines for %d cases:\n%s", shell, len(got), len(cases), out)
	}
	for i, c := range cases {
		if strings.TrimSpace(got[i]) != c.want {
			t.Errorf("%s completes %q to %q, want %q", shell, c.line, got[i], c.want)
		}
	}
}
