"""Node dataplane: parsers of iptables-save, ipvsadm, nft and conntrack output into one model."""
