package gen

import (
	"strings"
	"time"
)

// proc is a process as OCSF describes it.
type proc struct {
	pid     int
	path    string
	cmd     string
	user    string
	cwd     string
	uid     string
	lineage []string
	parent  *proc
	sha256  string
}

func (p *proc) name() string { return p.path[strings.LastIndexByte(p.path, '/')+1:] }

// ocsf renders the process object; withParent adds parent_process.
func (p *proc) ocsf(withParent bool) obj {
	file := obj{"path": p.path, "name": p.name()}
	if p.sha256 != "" {
		file["hashes"] = []any{obj{"algorithm": "SHA-256", "algorithm_id": 3, "value": p.sha256}}
	}
	o := obj{"pid": p.pid, "name": p.name(), "file": file, "uid": p.uid}
	if p.cmd != "" {
		o["cmd_line"] = p.cmd
	}
	if p.user != "" {
		o["user"] = obj{"name": p.user}
	}
	if p.cwd != "" {
		o["cwd"] = p.cwd
	}
	if len(p.lineage) > 0 {
		o["lineage"] = p.lineage
	}
	if withParent && p.parent != nil {
		o["parent_process"] = p.parent.ocsf(false)
	}
	return o
}

// spawn returns a child process of p.
func (d *day) spawn(h host, parent *proc, path, cmd, user string) *proc {
	c := &proc{pid: d.r.between(1000, 65000), path: path, cmd: cmd, user: user, parent: parent, cwd: parent.cwd}
	if c.user == "" {
		c.user = parent.user
	}
	c.lineage = append(append([]string{}, parent.lineage...), parent.path)
	c.uid = h.name + "-" + d.r.hex(12)
	return c
}

// sysproc is a long-running process of a host (pid 1's child).
func (d *day) sysproc(h host, path, cmd, user string) *proc {
	return &proc{pid: d.r.between(300, 4000), path: path, cmd: cmd, user: user, cwd: "/",
		lineage: []string{"/usr/lib/systemd/systemd"}, uid: h.name + "-" + d.r.hex(12),
		parent: &proc{pid: 1, path: "/usr/lib/systemd/systemd", user: "root", uid: h.name + "-1"}}
}

func (d *day) agentEvent(t time.Time, h host, class, activity int, severity int, fields obj) {
	e := obj{"class_uid": class, "activity_id": activity, "time": ms(t), "severity_id": severity,
		"metadata": obj{"uid": d.r.uuid(), "product": obj{"name": "musubi-sensor", "vendor_name": "Musubi", "version": "1.4.2"}, "version": "1.1.0"},
		"cloud":    obj{"provider": "AWS", "region": d.w.region, "account": obj{"uid": h.account}},
		"device": obj{"hostname": h.name, "uid": h.instance, "instance_uid": h.instance, "ip": h.privateIP,
			"region": d.w.region, "type": "Server", "type_id": 1, "os": obj{"name": "Debian 12", "type": "Linux", "type_id": 200}}}
	for k, v := range fields {
		e[k] = v
	}
	d.add(record{src: srcAgent, t: t, account: h.account, host: h.name, body: e})
}

// launch records Process Activity: Launch. In OCSF 1007 process is the
// child and actor.process its parent.
func (d *day) launch(t time.Time, h host, p *proc) {
	f := obj{"process": p.ocsf(true)}
	if p.parent != nil {
		f["actor"] = obj{"process": p.parent.ocsf(false)}
	}
	d.agentEvent(t, h, 1007, 1, 1, f)
}

// fileOp records File System Activity by p (actor.process). activity: 1
// create, 2 read, 3 update, 5 rename (to), 4 delete.
func (d *day) fileOp(t time.Time, h host, p *proc, activity int, path, to string, size int) {
	f := obj{"file": obj{"path": path, "name": path[strings.LastIndexByte(path, '/')+1:], "type_id": 1}, "actor": obj{"process": p.ocsf(false)}}
	if size > 0 {
		f["file"].(obj)["size"] = size
	}
	if to != "" {
		f["file_result"] = obj{"path": to, "name": to[strings.LastIndexByte(to, '/')+1:], "type_id": 1}
	}
	d.agentEvent(t, h, 1001, activity, 1, f)
}

// connect records Network Activity: Open by p (actor.process) from h to
// ip:port.
func (d *day) connect(t time.Time, h host, p *proc, ip string, port int) {
	d.agentEvent(t, h, 4001, 1, 1, obj{
		"src_endpoint":    obj{"ip": h.privateIP, "port": d.r.between(32768, 60999)},
		"dst_endpoint":    obj{"ip": ip, "port": port},
		"connection_info": obj{"direction_id": 2, "direction": "Outbound", "protocol_num": 6, "protocol_name": "tcp"},
		"actor":           obj{"process": p.ocsf(false)},
	})
}

// sshLogon records Authentication: Logon of user on h from src.
func (d *day) sshLogon(t time.Time, h host, usr, src string) {
	d.agentEvent(t, h, 3002, 1, 1, obj{
		"user": obj{"name": usr}, "src_endpoint": obj{"ip": src}, "dst_endpoint": obj{"ip": h.privateIP, "port": 22},
		"auth_protocol": "publickey", "logon_type": "Network", "logon_type_id": 3, "is_remote": true,
		"status": "Success", "status_id": 1, "service": obj{"name": "sshd"},
	})
}
