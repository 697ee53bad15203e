import LearnStoreModel

/// HELLO request: the protocol versions the client speaks.
public struct HelloRequest: Sendable, Hashable {
    public var minimumVersion: UInt16
    public var maximumVersion: UInt16
    public var clientName: String

    public init(minimumVersion: UInt16 = ProtocolVersion.supported.lowerBound,
                maximumVersion: UInt16 = ProtocolVersion.supported.upperBound, clientName: String) {
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.clientName = clientName
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeU16(minimumVersion)
        writer.writeU16(maximumVersion)
        writer.writeString(clientName)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> HelloRequest {
        let minimum = try reader.readU16()
        let maximum = try reader.readU16()
        let name = try reader.readString(limit: 256)
        try reader.expectEnd()
        return HelloRequest(minimumVersion: minimum, maximumVersion: maximum, clientName: name)
    }

    /// The highest version both sides speak, if any.
    public func negotiate(with supported: ClosedRange<UInt16> = ProtocolVersion.supported) -> UInt16? {
        let high = min(maximumVersion, supported.upperBound)
        let low = max(minimumVersion, supported.lowerBound)
        return low <= high ? high : nil
    }
}

/// HELLO response.
public struct HelloResponse: Sendable, Hashable {
    public var version: UInt16
    public var serverName: String
    public var serverVersion: String
    public var maximumFrameBytes: UInt32
    public var maximumInFlight: UInt32
    public var features: ProtocolFeatures

    public init(version: UInt16, serverName: String = "learnstore", serverVersion: String, maximumFrameBytes: UInt32,
                maximumInFlight: UInt32, features: ProtocolFeatures) {
        self.version = version
        self.serverName = serverName
        self.serverVersion = serverVersion
        self.maximumFrameBytes = maximumFrameBytes
        self.maximumInFlight = maximumInFlight
        self.features = features
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeU16(version)
        writer.writeString(serverName)
        writer.writeString(serverVersion)
        writer.writeU32(maximumFrameBytes)
        writer.writeU32(maximumInFlight)
        writer.writeU64(features.rawValue)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> HelloResponse {
        let version = try reader.readU16()
        let name = try reader.readString(limit: 256)
        let serverVersion = try reader.readString(limit: 256)
        let frame = try reader.readU32()
        let inFlight = try reader.readU32()
        let features = ProtocolFeatures(rawValue: try reader.readU64())
        return HelloResponse(version: version, serverName: name, serverVersion: serverVersion, maximumFrameBytes: frame,
                             maximumInFlight: inFlight, features: features)
    }
}

/// AUTH request: a JWT.
public struct AuthRequest: Sendable, Hashable {
    public static let maximumTokenBytes = 8192
    public var token: String

    public init(token: String) { self.token = token }

    public func encode(into writer: inout ByteWriter) { writer.writeString(token) }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> AuthRequest {
        let token = try reader.readString(limit: maximumTokenBytes)
        try reader.expectEnd()
        return AuthRequest(token: token)
    }
}

/// AUTH response: who the server now takes the caller to be.
public struct AuthResponse: Sendable, Hashable {
    public var identity: CallerIdentity
    public var expiresAt: Timestamp

    public init(identity: CallerIdentity, expiresAt: Timestamp) {
        self.identity = identity
        self.expiresAt = expiresAt
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeString(identity.tenantID)
        if let app = identity.appID {
            writer.writeU8(1)
            writer.writeString(app)
        } else {
            writer.writeU8(0)
        }
        writer.writeUUID(identity.personID)
        writer.writeU32(identity.scopes.rawValue)
        writer.writeI64(expiresAt.milliseconds)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> AuthResponse {
        let tenant = try reader.readString(limit: 256)
        let app = try reader.readU8() == 1 ? try reader.readString(limit: 256) : nil
        let person = try reader.readUUID()
        let scopes = Scopes(rawValue: try reader.readU32())
        let expires = try reader.readTimestamp()
        return AuthResponse(identity: CallerIdentity(tenantID: tenant, appID: app, personID: person, scopes: scopes), expiresAt: expires)
    }
}
