package vpcflow_test

import (
	"fmt"

	"github.com/musubi-xdr/musubi/ingest/vpcflow"
)

// A custom format is read from the header line of its file.
func ExampleParseHeader() {
	f, err := vpcflow.ParseHeader("version account-id instance-id srcaddr dstaddr srcport dstport protocol bytes start end action log-status flow-direction")
	if err != nil {
		fmt.Println(err)
		return
	}
	ev, err := f.Normalize([]byte("5 111122223333 i-0a1b2c3d4e5f60718 203.0.113.77 10.0.1.25 49152 443 6 4210 1741082400 1741082460 ACCEPT OK ingress"), "example.log", 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.SrcEndpoint.IP, "->", ev.DstEndpoint.IP, ev.DstEndpoint.Port, ev.DstEndpoint.InstanceUID)
	fmt.Println(ev.ConnectionInfo.Direction, ev.ConnectionInfo.ProtocolName, ev.Traffic.Bytes, ev.Action)
	// Output:
	// 203.0.113.77 -> 10.0.1.25 443 i-0a1b2c3d4e5f60718
	// Inbound tcp 4210 Allowed
}
