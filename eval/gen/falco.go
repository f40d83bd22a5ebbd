package gen

import (
	"strings"
	"time"
)

// falco records a Falco JSON alert on h.
func (d *day) falco(t time.Time, h host, rule, priority, output string, fields obj, tags ...string) {
	f := obj{"container.id": "host", "container.name": "host"}
	for k, v := range fields {
		f[k] = v
	}
	a := obj{"uuid": d.r.uuid(), "output": t.UTC().Format("15:04:05.000000000") + ": " + priority + " " + output,
		"priority": priority, "rule": rule, "time": t.UTC().Format("2006-01-02T15:04:05.000000000Z"),
		"output_fields": f, "hostname": h.name, "source": "syscall", "tags": append([]string{"host"}, tags...)}
	d.add(record{src: srcFalco, t: t, account: h.account, host: h.name, body: a})
}

// procFields are the proc.* output fields of p.
func procFields(p *proc) obj {
	f := obj{"proc.name": p.name(), "proc.pid": p.pid, "proc.exepath": p.path, "proc.cmdline": strings.TrimSpace(p.name() + " " + args(p.cmd)), "user.name": p.user}
	if p.parent != nil {
		f["proc.pname"] = p.parent.name()
		f["proc.ppid"] = p.parent.pid
	}
	return f
}

// args is a command line without its program.
func args(cmd string) string {
	if i := strings.IndexByte(cmd, ' '); i >= 0 {
		return cmd[i+1:]
	}
	return ""
}
