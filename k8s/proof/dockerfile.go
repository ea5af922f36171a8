package proof

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Instruction is one Dockerfile instruction with its continuation lines joined.
type Instruction struct {
	Cmd   string   // upper case: FROM, COPY, RUN, ...
	Flags []string // leading --flags
	Args  []string // the remaining words (JSON arrays kept as one word)
	Line  string   // the joined text after the command
}

// Stage is one FROM and its instructions.
type Stage struct {
	Name     string // AS name, or its index
	Base     string // image after ARG expansion
	Platform string
	Body     []Instruction
}

// Dockerfile is a parsed Dockerfile: global ARG defaults and stages.
type Dockerfile struct {
	Syntax string
	Args   map[string]string
	Stages []Stage
}

// ParseDockerfile parses the subset of the Dockerfile syntax the repository
// uses: directives, comments, continuation lines, ARG expansion in FROM.
func ParseDockerfile(r io.Reader) (*Dockerfile, error) {
	df := &Dockerfile{Args: map[string]string{}}
	sc := bufio.NewScanner(r)
	var joined []string
	var cur strings.Builder
	first := true
	for sc.Scan() {
		line := sc.Text()
		t := strings.TrimSpace(line)
		if first && strings.HasPrefix(t, "# syntax=") {
			df.Syntax = strings.TrimPrefix(t, "# syntax=")
		}
		first = false
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\") + " ")
			continue
		}
		cur.WriteString(t)
		joined = append(joined, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("dangling line continuation")
	}
	for _, l := range joined {
		cmd, rest, _ := strings.Cut(l, " ")
		in := Instruction{Cmd: strings.ToUpper(cmd), Line: strings.TrimSpace(rest)}
		words := strings.Fields(in.Line)
		for len(words) > 0 && strings.HasPrefix(words[0], "--") {
			in.Flags = append(in.Flags, words[0])
			words = words[1:]
		}
		if strings.HasPrefix(strings.TrimSpace(strings.Join(words, " ")), "[") {
			words = []string{strings.Join(words, " ")}
		}
		in.Args = words
		switch in.Cmd {
		case "FROM":
			st := Stage{Name: fmt.Sprint(len(df.Stages))}
			if len(in.Args) == 0 {
				return nil, fmt.Errorf("FROM without image")
			}
			st.Base = expandArgs(in.Args[0], df.Args)
			if len(in.Args) == 3 && strings.EqualFold(in.Args[1], "AS") {
				st.Name = in.Args[2]
			} else if len(in.Args) != 1 {
				return nil, fmt.Errorf("FROM %s: want IMAGE [AS NAME]", in.Line)
			}
			for _, f := range in.Flags {
				if p, ok := strings.CutPrefix(f, "--platform="); ok {
					st.Platform = p
				}
			}
			df.Stages = append(df.Stages, st)
		case "ARG":
			if len(df.Stages) == 0 {
				for _, a := range in.Args {
					k, v, _ := strings.Cut(a, "=")
					df.Args[k] = v
				}
				continue
			}
			fallthrough
		default:
			if len(df.Stages) == 0 {
				return nil, fmt.Errorf("%s before the first FROM", in.Cmd)
			}
			known := map[string]bool{"RUN": true, "COPY": true, "ADD": true, "ARG": true, "ENV": true, "WORKDIR": true,
				"USER": true, "ENTRYPOINT": true, "CMD": true, "EXPOSE": true, "LABEL": true, "HEALTHCHECK": true,
				"STOPSIGNAL": true, "VOLUME": true, "SHELL": true, "ONBUILD": true}
			if !known[in.Cmd] {
				return nil, fmt.Errorf("unknown instruction %s", in.Cmd)
			}
			s := &df.Stages[len(df.Stages)-1]
			s.Body = append(s.Body, in)
		}
	}
	return df, sc.Err()
}

func expandArgs(s string, args map[string]string) string {
	return os.Expand(s, func(k string) string {
		if v, ok := args[k]; ok {
			return v
		}
		return "$" + k
	})
}

// Stage returns the stage called name.
func (d *Dockerfile) Stage(name string) *Stage {
	for i := range d.Stages {
		if d.Stages[i].Name == name {
			return &d.Stages[i]
		}
	}
	return nil
}

// Find returns the stage's instructions of one kind.
func (s *Stage) Find(cmd string) []Instruction {
	var out []Instruction
	for _, in := range s.Body {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// Last returns the stage's last instruction of one kind, or nil.
func (s *Stage) Last(cmd string) *Instruction {
	all := s.Find(cmd)
	if len(all) == 0 {
		return nil
	}
	return &all[len(all)-1]
}

func hasFlagPrefix(in Instruction, prefix string) bool {
	for _, f := range in.Flags {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	return false
}

// BuildContext copies what a stage's COPY instructions (without --from) take
// from the repository into dir, as BuildKit would: .dockerignore applies, glob
// sources may match nothing when another source of the same COPY matches.
// Destinations are relative to the stage's WORKDIR.
func BuildContext(root string, st *Stage, dir string) error {
	ignore, err := readDockerignore(root)
	if err != nil {
		return err
	}
	workdir := "/"
	for _, in := range st.Body {
		switch in.Cmd {
		case "WORKDIR":
			workdir = path.Join(workdir, in.Args[0])
		case "COPY", "ADD":
			if hasFlagPrefix(in, "--from=") {
				continue
			}
			if len(in.Args) < 2 {
				return fmt.Errorf("%s %s: want SRC... DEST", in.Cmd, in.Line)
			}
			srcs, dest := in.Args[:len(in.Args)-1], in.Args[len(in.Args)-1]
			destDir := path.Join(workdir, dest)
			matched := 0
			for _, src := range srcs {
				ms, err := filepath.Glob(filepath.Join(root, src))
				if err != nil {
					return err
				}
				for _, m := range ms {
					rel, _ := filepath.Rel(root, m)
					if ok, _ := ignore.MatchesOrParentMatches(filepath.ToSlash(rel)); ok {
						continue
					}
					matched++
					if err := copyInto(root, m, ignore, filepath.Join(dir, destDir), strings.HasSuffix(dest, "/") || len(srcs) > 1); err != nil {
						return err
					}
				}
			}
			if matched == 0 {
				return fmt.Errorf("%s %s: no source in the build context", in.Cmd, in.Line)
			}
		}
	}
	return nil
}

func readDockerignore(root string) (*patternmatcher.PatternMatcher, error) {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return nil, err
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return patternmatcher.New(patterns)
}

// copyInto copies file or directory src. A directory's contents go into dest;
// a file goes to dest/base when destIsDir, else to dest.
func copyInto(root, src string, ignore *patternmatcher.PatternMatcher, dest string, destIsDir bool) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		if destIsDir {
			dest = filepath.Join(dest, filepath.Base(src))
		}
		return copyFile(src, dest, info.Mode())
	}
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if ok, _ := ignore.MatchesOrParentMatches(filepath.ToSlash(rel)); ok {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		inner, _ := filepath.Rel(src, p)
		target := filepath.Join(dest, inner)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		return copyFile(p, target, fi.Mode())
	})
}

func copyFile(src, dest string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dest, data, mode.Perm())
}
