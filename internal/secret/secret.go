// Package secret resolves secret settings: a value in the configuration may
// be the secret itself, "env:NAME" to read it from the environment, or
// "file:PATH" to read it from a file (a mounted Kubernetes Secret).
package secret

import (
	"fmt"
	"os"
	"strings"
)

// Resolve returns the secret a setting names: "env:NAME" reads the
// environment (an empty variable is an error), "file:PATH" reads a file
// (trailing newlines trimmed), anything else is the secret itself.
func Resolve(v string) (string, error) {
	if name, ok := strings.CutPrefix(v, "env:"); ok {
		s := os.Getenv(name)
		if s == "" {
			return "", fmt.Errorf("environment variable %s is empty", name)
		}
		return s, nil
	}
	if path, ok := strings.CutPrefix(v, "file:"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return v, nil
}
