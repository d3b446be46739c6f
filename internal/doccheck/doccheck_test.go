// The tests of this package compile every ```go block of README.md and
// of the .md files under docs/, from the file it is in, against the checkout, and build and
// run the README's programs.
//
// The convention: a block with a package clause is a whole file and is
// compiled as it stands, as a package of its own (a program when it is
// package main). Any other block is a fragment: the line before its fence
// must be an HTML comment naming a wrapper, <!-- doccheck:wrap NAME -->,
// and testdata/NAME.go is a whole Go file with a line
// "//doccheck:fragment" where the block's lines go (at top level or in a
// function body, as the fragment needs). Every wrapper must be used.
// Errors point at the Markdown file and line. All blocks go into one
// temporary module, replacing github.com/evbus/evbus by the checkout, and
// are checked by one go vet.
package doccheck

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// block is a ```go block of a Markdown file.
type block struct {
	file    string // relative to the module root, slash-separated
	line    int    // line of the block's first code line, from 1
	code    string
	wrap    string // the wrapper's name, for a fragment
	heading string // the nearest heading above the block
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// dir is the block's package directory in the generated module.
func (b block) dir() string {
	return strings.NewReplacer("/", "_", ".", "_", "-", "_").Replace(strings.ToLower(b.file)) + fmt.Sprintf("_line%d", b.line)
}

func (b block) complete() bool { return packageClause.MatchString(b.code) }

var (
	packageClause = regexp.MustCompile(`(?m)^package \w+\s*$`)
	wrapComment   = regexp.MustCompile(`^<!--\s*doccheck:wrap\s+([\w-]+)\s*-->$`)
	fragmentLine  = "//doccheck:fragment"
)

// root returns the module root: the directory of the go.mod two levels up.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil || !bytes.HasPrefix(mod, []byte("module github.com/evbus/evbus\n")) {
		t.Fatalf("%s is not the module root (go.mod: %v)", dir, err)
	}
	return dir
}

// documents returns README.md and every .md file under docs/ (design
// notes in its subfolders too), relative to the root.
func documents(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".md" {
			return err
		}
		rel, err := filepath.Rel(root, path)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// parse returns the ```go blocks of a Markdown document.
func parse(file string, text []byte) ([]block, error) {
	var (
		blocks  []block
		cur     *block
		code    strings.Builder
		prev    string // the last non-blank line outside a block
		heading string
		fence   string // the open fence of a block of another language
	)
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur != nil && trimmed == "```":
			cur.code = code.String()
			blocks = append(blocks, *cur)
			cur, prev = nil, ""
		case cur != nil:
			code.WriteString(line)
			code.WriteByte('\n')
		case fence != "":
			if trimmed == "```" {
				fence, prev = "", ""
			}
		case trimmed == "```go":
			if line != trimmed {
				return nil, fmt.Errorf("%s:%d: an indented ```go block: start it at the line's beginning", file, n)
			}
			cur = &block{file: file, line: n + 1, heading: heading}
			if m := wrapComment.FindStringSubmatch(prev); m != nil {
				cur.wrap = m[1]
			}
			code.Reset()
		case strings.HasPrefix(trimmed, "```"):
			fence = trimmed
		case strings.HasPrefix(line, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
			prev = trimmed
		case trimmed != "":
			prev = trimmed
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: a ```go block without its closing fence", file, cur.line-1)
	}
	return blocks, sc.Err()
}

// readBlocks returns the Go blocks of every document.
func readBlocks(t *testing.T, root string) []block {
	t.Helper()
	var all []block
	for _, f := range documents(t, root) {
		text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		bs, err := parse(f, text)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, bs...)
	}
	if len(all) == 0 {
		t.Fatal("no Go blocks found in README.md and docs/")
	}
	return all
}

// source returns the Go file a block compiles as, with line directives
// that point errors at the document.
func source(root string, b block) (string, error) {
	at := fmt.Sprintf("//line %s:%d\n", filepath.Join(root, filepath.FromSlash(b.file)), b.line)
	if b.complete() {
		if b.wrap != "" {
			return "", fmt.Errorf("%v: a whole file (it has a package clause) needs no wrapper", b)
		}
		return at + b.code, nil
	}
	if b.wrap == "" {
		return "", fmt.Errorf("%v: a fragment without a package clause: put <!-- doccheck:wrap NAME --> on the line before its fence, with testdata/NAME.go around it (see doccheck_test.go)", b)
	}
	wrapper, err := filepath.Abs(filepath.Join("testdata", b.wrap+".go"))
	if err != nil {
		return "", err
	}
	w, err := os.ReadFile(wrapper)
	if err != nil {
		return "", fmt.Errorf("%v: the wrapper: %w", b, err)
	}
	lines := strings.SplitAfter(string(w), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == fragmentLine {
			back := fmt.Sprintf("//line %s:%d\n", wrapper, i+2)
			return strings.Join(lines[:i], "") + at + b.code + back + strings.Join(lines[i+1:], ""), nil
		}
	}
	return "", fmt.Errorf("testdata/%s.go has no line %q for the fragment of %v", b.wrap, fragmentLine, b)
}

// module writes a module holding blocks, one package each, that uses the
// checkout at root for github.com/evbus/evbus, and returns its directory.
func module(t *testing.T, root string, blocks []block) string {
	t.Helper()
	dir := t.TempDir()
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The checkout's own requirements, so that the blocks build with the
	// versions evbus is tested with.
	gomod := strings.Replace(string(mod), "module github.com/evbus/evbus\n", "module evbus.example/doccheck\n", 1) +
		fmt.Sprintf("\nrequire github.com/evbus/evbus v0.0.0\n\nreplace github.com/evbus/evbus => %s\n", root)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "go.mod"), gomod)
	write(t, filepath.Join(dir, "go.sum"), string(sum))
	for _, b := range blocks {
		src, err := source(root, b)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, b.dir(), "block.go"), src)
	}
	return dir
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// goCmd runs the go command in dir.
func goCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	return cmd
}

// TestBlocksCompile compiles (go vet) every Go block of the documents.
func TestBlocksCompile(t *testing.T) {
	t.Parallel()
	root := root(t)
	blocks := readBlocks(t, root)
	used := map[string]bool{}
	for _, b := range blocks {
		used[b.wrap] = true
	}
	wrappers, err := filepath.Glob(filepath.Join("testdata", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wrappers {
		if name := strings.TrimSuffix(filepath.Base(w), ".go"); !used[name] {
			t.Errorf("testdata/%s.go wraps no block: remove it", name)
		}
	}
	dir := module(t, root, blocks)
	if out, err := goCmd(t.Context(), dir, "vet", "./...").CombinedOutput(); err != nil {
		t.Fatalf("go vet of the documents' Go blocks: %v\n%s", err, out)
	}
	t.Logf("%d Go blocks compiled", len(blocks))
}

// program is a README program the test runs, and what it must print.
type program struct {
	heading string         // the section it is in
	first   bool           // it must be the README's first package main block
	out     *regexp.Regexp // its whole standard output
}

var programs = []program{
	{
		heading: "Quickstart: publish and consume one event",
		first:   true,
		out:     regexp.MustCompile(`^billing charges o-1001 49\.99 for event [0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\n$`),
	},
	{
		heading: "Publish through the outbox, consume idempotently",
		out:     regexp.MustCompile(`^billing: invoice o-1001 paid\n$`),
	},
}

// TestProgramsRun builds the README's programs as a user would (the
// Quickstart is its first package main block), runs each and checks its
// output and its exit status.
func TestProgramsRun(t *testing.T) {
	t.Parallel()
	root := root(t)
	var mains []block
	for _, b := range readBlocks(t, root) {
		if b.file == "README.md" && strings.Contains(b.code, "package main") {
			mains = append(mains, b)
		}
	}
	run := make([]block, len(programs))
	for i, p := range programs {
		found := false
		for j, b := range mains {
			if b.heading == p.heading {
				if p.first && j != 0 {
					t.Fatalf("the README's first package main block is at %v (%s), not in %q", mains[0], mains[0].heading, p.heading)
				}
				run[i], found = b, true
				break
			}
		}
		if !found {
			t.Fatalf("no package main block in the README's section %q", p.heading)
		}
	}
	dir := module(t, root, run)
	bin := t.TempDir()
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, b := range run {
		args = append(args, "./"+b.dir())
	}
	if out, err := goCmd(t.Context(), dir, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build of the README's programs: %v\n%s", err, out)
	}
	for i, b := range run {
		t.Run(b.dir(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, b.dir()))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("the program at %v: %v\nstdout:\n%s\nstderr:\n%s", b, err, stdout.String(), stderr.String())
			}
			if !programs[i].out.Match(stdout.Bytes()) {
				t.Fatalf("the program at %v printed:\n%s\nwant it to match %s\nstderr:\n%s", b, stdout.String(), programs[i].out, stderr.String())
			}
		})
	}
}

// parse finds the go blocks, their first line, their wrapper and their
// section, and skips blocks of other languages.
func TestParse(t *testing.T) {
	doc := "# Title\n\n## Use\n\n```sh\n```go\n```\n\n<!-- doccheck:wrap w -->\n```go\nx := 1\n```\n\n```go\npackage main\n```\n"
	got, err := parse("d.md", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []block{
		{file: "d.md", line: 11, code: "x := 1\n", wrap: "w", heading: "Use"},
		{file: "d.md", line: 15, code: "package main\n", heading: "Use"},
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("parse:\n%+v\nwant\n%+v", got, want)
	}
	if _, err := parse("d.md", []byte("```go\nx := 1\n")); err == nil {
		t.Error("an unclosed block parsed without an error")
	}
	if _, err := source("/r", got[1]); err != nil {
		t.Errorf("a whole file: %v", err)
	}
	if _, err := source("/r", block{file: "d.md", line: 3, code: "x := 1\n"}); err == nil || !strings.Contains(err.Error(), "doccheck:wrap") {
		t.Errorf("a fragment without a wrapper: %v, want an error naming the convention", err)
	}
}

// Documents in docs/'s subfolders (design notes) are checked too.
func TestDocumentsNested(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"docs/a.md", "docs/design/b.md", "docs/design/c.txt"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := documents(t, root)
	want := []string{"README.md", "docs/a.md", "docs/design/b.md"}
	if !slices.Equal(got, want) {
		t.Fatalf("documents = %q, want %q", got, want)
	}
}
