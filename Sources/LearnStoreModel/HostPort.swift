/// `host:port` as nodes, seeds and etcd endpoints are written: the port is what follows the last
/// colon (1 ... 65535), the host what precedes it (not empty).
public enum HostPort {
    public static func split(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        let host = String(address[..<colon])
        return host.isEmpty ? nil : (host, port)
    }
}
