package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
)

const completionUsage = `Usage: musubi completion bash|zsh|fish

Prints a completion script for the shell: commands, their subcommands and
the flags each one takes.

  bash   source <(musubi completion bash)       (e.g. in ~/.bashrc)
  zsh    source <(musubi completion zsh)        (after compinit), or save it
         as _musubi in a directory of $fpath
  fish   musubi completion fish | source        or save it as
         ~/.config/fish/completions/musubi.fish
`

func completionCommand(args []string, stdout, stderr io.Writer) int {
	if wantsHelp(args) || (len(args) > 1 && wantsHelp(args[1:])) {
		fmt.Fprint(stdout, completionUsage)
		return 0
	}
	if len(args) != 1 {
		fmt.Fprint(stderr, completionUsage)
		return 2
	}
	spec := completionSpec()
	switch args[0] {
	case "bash":
		writeBash(stdout, spec)
	case "zsh":
		writeZsh(stdout, spec)
	case "fish":
		writeFish(stdout, spec)
	default:
		fmt.Fprintf(stderr, "musubi completion: unknown shell %q\n\n%s", args[0], completionUsage)
		return 2
	}
	return 0
}

// flagHelp is one flag of a command and its help.
type flagHelp struct{ name, help string }

// completable is a command as completion sees it: its subcommands, and the
// flags of the command ("serve") or of each subcommand ("rules lint").
type completable struct {
	command
	flags map[string][]flagHelp // key: "" or the subcommand
}

var defaultsRe = regexp.MustCompile(`(?m)^  (-[A-Za-z0-9][A-Za-z0-9-]*)[^\n]*\n((?:    \t[^\n]*\n)*)`)

// completionSpec asks every command for its help, in process, and reads
// the flags off it: the flag sets stay the one place a flag is declared.
func completionSpec() []completable {
	var out []completable
	for _, c := range commands {
		cc := completable{command: c, flags: map[string][]flagHelp{}}
		if c.name == "help" {
			for _, o := range commands {
				if o.name != "help" {
					cc.subcommands = append(cc.subcommands, o.name)
				}
			}
			out = append(out, cc)
			continue
		}
		if c.name == "completion" {
			out = append(out, cc)
			continue
		}
		keys := []string{""}
		if len(c.subcommands) > 0 {
			keys = c.subcommands
		}
		for _, sub := range keys {
			args := []string{c.name}
			if sub != "" {
				args = append(args, sub)
			}
			var help strings.Builder
			run(context.Background(), append(args, "-h"), strings.NewReader(""), &help, io.Discard)
			for _, m := range defaultsRe.FindAllStringSubmatch(help.String(), -1) {
				text := strings.Join(strings.Fields(strings.ReplaceAll(m[2], "\t", " ")), " ")
				cc.flags[sub] = append(cc.flags[sub], flagHelp{name: m[1], help: text})
			}
		}
		out = append(out, cc)
	}
	return out
}

func flagNames(fs []flagHelp) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return strings.Join(names, " ")
}

func commandNames(spec []completable) string {
	names := make([]string, len(spec))
	for i, c := range spec {
		names[i] = c.name
	}
	return strings.Join(names, " ")
}

// flagKeys yields the completion key of each flag list: "cmd" or "cmd sub".
func flagKeys(c completable, yield func(key string, fs []flagHelp)) {
	for _, sub := range append([]string{""}, c.subcommands...) {
		if fs := c.flags[sub]; len(fs) > 0 {
			yield(strings.TrimSpace(c.name+" "+sub), fs)
		}
	}
}

func writeBash(w io.Writer, spec []completable) {
	fmt.Fprintf(w, `# bash completion for musubi. Load it with: source <(musubi completion bash)
_musubi() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "%s" -- "$cur"))
        return
    fi
    local cmd="${COMP_WORDS[1]}" subs="" key flags=""
    case "$cmd" in
`, commandNames(spec))
	for _, c := range spec {
		if len(c.subcommands) > 0 {
			fmt.Fprintf(w, "        %s) subs=%q ;;\n", c.name, strings.Join(c.subcommands, " "))
		}
	}
	fmt.Fprint(w, `    esac
    key="$cmd"
    if [ -n "$subs" ]; then
        if [ "$COMP_CWORD" -eq 2 ]; then
            COMPREPLY=($(compgen -W "$subs" -- "$cur"))
            return
        fi
        key="$cmd ${COMP_WORDS[2]}"
    fi
    case "$key" in
`)
	for _, c := range spec {
		flagKeys(c, func(key string, fs []flagHelp) {
			fmt.Fprintf(w, "        %q) flags=%q ;;\n", key, flagNames(fs))
		})
	}
	fmt.Fprint(w, `    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -o filenames -F _musubi musubi
`)
}

func writeZsh(w io.Writer, spec []completable) {
	fmt.Fprintf(w, `#compdef musubi
# zsh completion for musubi. Load it with: source <(musubi completion zsh)
# (after compinit), or save it as _musubi in a directory of $fpath.
_musubi() {
    local -a subs flags
    local key
    if (( CURRENT == 2 )); then
        compadd -- %s
        return
    fi
    case $words[2] in
`, commandNames(spec))
	for _, c := range spec {
		if len(c.subcommands) > 0 {
			fmt.Fprintf(w, "        %s) subs=(%s) ;;\n", c.name, strings.Join(c.subcommands, " "))
		}
	}
	fmt.Fprint(w, `    esac
    key=$words[2]
    if (( ${#subs} )); then
        if (( CURRENT == 3 )); then
            compadd -a subs
            return
        fi
        key="$words[2] $words[3]"
    fi
    case $key in
`)
	for _, c := range spec {
		flagKeys(c, func(key string, fs []flagHelp) {
			fmt.Fprintf(w, "        %q) flags=(%s) ;;\n", key, flagNames(fs))
		})
	}
	fmt.Fprint(w, `    esac
    if [[ $PREFIX == -* ]]; then
        compadd -a flags
    else
        _files
    fi
}
if [ "$funcstack[1]" = "_musubi" ]; then
    _musubi "$@"
else
    compdef _musubi musubi
fi
`)
}

// fishQuote quotes s for fish: single quotes, with \ and ' escaped.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer, spec []completable) {
	fmt.Fprint(w, "# fish completion for musubi. Load it with: musubi completion fish | source\ncomplete -c musubi -f\n")
	for _, c := range spec {
		fmt.Fprintf(w, "complete -c musubi -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	for _, c := range spec {
		seen := "__fish_seen_subcommand_from " + c.name
		if len(c.subcommands) > 0 {
			subs := strings.Join(c.subcommands, " ")
			fmt.Fprintf(w, "complete -c musubi -n %s -a %s\n", fishQuote(seen+"; and not __fish_seen_subcommand_from "+subs), fishQuote(subs))
		}
		flagKeys(c, func(key string, fs []flagHelp) {
			cond := seen
			if _, sub, ok := strings.Cut(key, " "); ok {
				cond += "; and __fish_seen_subcommand_from " + sub
			}
			for _, f := range fs {
				fmt.Fprintf(w, "complete -c musubi -n %s -o %s -d %s\n", fishQuote(cond), strings.TrimPrefix(f.name, "-"), fishQuote(f.help))
			}
		})
	}
	// Commands that read files or directories complete paths.
	fmt.Fprintln(w, "complete -c musubi -n '__fish_seen_subcommand_from replay normalize eval rules config' -F")
}
