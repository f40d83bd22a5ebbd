package gen

import (
	"fmt"
	"strings"
	"time"
)

// Flow log formats: the version-2 default, and the custom format the app
// subnets use (its header names the fields).
const (
	flowHeaderV2     = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
	flowHeaderCustom = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status flow-direction"
)

// flow records one aggregated flow seen on h's interface; inbound says the
// remote end started it.
func (d *day) flow(t time.Time, h host, remote string, remotePort, localPort int, inbound bool, action string, packets, bytes int) {
	f := flowRecord{eni: h.eni, instance: h.instance, subnet: h.subnet, vpc: h.vpc, proto: 6, packets: packets, bytes: bytes, action: action, tcpFlags: 2}
	if inbound {
		f.src, f.dst, f.sport, f.dport = remote, h.privateIP, remotePort, localPort
	} else {
		f.src, f.dst, f.sport, f.dport = h.privateIP, remote, localPort, remotePort
	}
	if action == "ACCEPT" {
		f.tcpFlags = 19
	}
	d.add(record{src: srcFlow, t: t.Truncate(time.Second), account: h.account, custom: h.customFlow, flow: f})
}

// line renders a flow record in its format; start and end are the
// aggregation interval.
func (f flowRecord) line(custom bool, account string, t time.Time) string {
	start := t.Unix()
	end := start + 60
	if !custom {
		return fmt.Sprintf("2 %s %s %s %s %d %d %d %d %d %d %d %s OK", account, f.eni, f.src, f.dst, f.sport, f.dport, f.proto, f.packets, f.bytes, start, end, f.action)
	}
	dir := "egress"
	if !strings.HasPrefix(f.src, "10.") || strings.HasPrefix(f.dst, "10.") && f.dport < 10000 && f.sport >= 10000 {
		dir = "ingress"
	}
	return fmt.Sprintf("5 %s %s %s %s %s IPv4 %s %s %d %d %s %s %d %d %d %d %d %s %d OK %s",
		f.vpc, f.subnet, f.instance, f.eni, account, f.src, f.dst, f.sport, f.dport, f.src, f.dst, f.proto, f.bytes, f.packets, start, end, f.action, f.tcpFlags, dir)
}
