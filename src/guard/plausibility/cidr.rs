//! Address ranges in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or a single address), matched
//! against the socket peer address of a request.
//!
//! In: a range from the configuration; the peer's IP. Out: whether it lies in the range. An
//! IPv4-mapped IPv6 peer (`::ffff:10.1.2.3`, from a dual-stack listener) is matched as the IPv4
//! address it carries. A range whose address has bits set beyond its prefix is refused, since
//! it usually means a typo.
//!
//! `ipnet` holds the range and does the prefix arithmetic. The text is split here and the
//! address read by the standard library's strict parser (ipnet's own reader takes `010.0.0.0`,
//! which std refuses as ambiguous), so that each mistake gets its own message.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let address: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range (expected e.g. 10.0.0.0/8 or fd00::/8)"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .map_err(|_| format!("{text:?}: prefix too long"))?,
            Some(p) => return Err(format!("{text:?}: {p:?} is not a prefix length")),
        };
        let net = IpNet::new(address, prefix).map_err(|_| {
            format!("{text:?}: prefix /{prefix} is longer than the address (at most /{max})")
        })?;
        if address.is_ipv6() && address.to_canonical().is_ipv4() {
            return Err(format!(
                "{text:?} is an IPv4-mapped range (expected it written as IPv4, e.g. 10.0.0.0/8)"
            ));
        }
        if net.trunc() != net {
            return Err(format!(
                "{text:?} has bits set after the prefix (expected the network address, e.g. {})",
                net.trunc()
            ));
        }
        Ok(Cidr(net))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// A `/0` range: every address of its family.
    pub fn is_everything(&self) -> bool {
        self.0.prefix_len() == 0
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_ranges_match_their_addresses_only() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.0.0.0")));
        assert!(c.contains(ip("10.255.255.255")));
        assert!(!c.contains(ip("11.0.0.0")));
        assert!(!c.contains(ip("127.0.0.1")));
        let host = Cidr::parse("192.168.1.7").unwrap();
        assert!(host.contains(ip("192.168.1.7")));
        assert!(!host.contains(ip("192.168.1.8")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        assert!(!all.contains(ip("::1")), "families never mix");
        let odd = Cidr::parse("172.16.0.0/12").unwrap();
        assert!(odd.contains(ip("172.31.255.1")));
        assert!(!odd.contains(ip("172.32.0.1")));
    }

    #[test]
    fn ipv6_ranges_and_mapped_ipv4_peers() {
        let c = Cidr::parse("fd00::/8").unwrap();
        assert!(c.contains(ip("fd12:3456::1")));
        assert!(!c.contains(ip("fe80::1")));
        assert!(Cidr::parse("::1/128").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        let v4 = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(
            v4.contains(ip("::ffff:127.0.0.1")),
            "mapped address counts as IPv4"
        );
        assert!(!v4.contains(ip("::1")));
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.1/8",
            "fd00::1/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "10.0.0/8",
            "host/8",
            "",
            "10.0.0.0/+8",
            "10.0.0.0/0008",
            "::ffff:10.0.0.0/104",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
        let e = Cidr::parse("10.1.2.3/8").unwrap_err();
        assert!(e.contains("10.0.0.0/8"), "{e}");
    }

    #[test]
    fn addresses_are_read_as_strictly_as_the_standard_library_reads_them() {
        for bad in ["010.0.0.0/8", "10.0.0.01", "1.2.3", "0x0a.0.0.0/8"] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Cidr::parse("::ffff:0:0/96"),
            Err("\"::ffff:0:0/96\" is an IPv4-mapped range (expected it written as IPv4, e.g. 10.0.0.0/8)".into())
        );
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_and_a_range_contains_its_network(text in "[0-9a-f.:/]{0,48}") {
            if let Ok(c) = Cidr::parse(&text) {
                proptest::prop_assert!(c.contains(c.0.network()));
                proptest::prop_assert_eq!(Cidr::parse(&c.to_string()), Ok(c));
            }
        }

        #[test]
        fn every_prefix_length_parses(v4 in proptest::prelude::any::<u32>(), v6 in proptest::prelude::any::<u128>(), p4 in 0u8..=32, p6 in 0u8..=128) {
            for (ip, p) in [(IpAddr::V4(v4.into()), p4), (IpAddr::V6(v6.into()), p6)] {
                let network = IpNet::new(ip, p).unwrap().trunc().addr();
                if network.to_canonical().is_ipv4() != network.is_ipv4() {
                    continue; // IPv4-mapped ranges are refused on purpose
                }
                let c = Cidr::parse(&format!("{network}/{p}")).unwrap();
                proptest::prop_assert!(c.contains(ip));
            }
        }
    }
}
