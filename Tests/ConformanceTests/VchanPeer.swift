// The domain's end of a channel in the vchan conformance body: a socket the
// test dialled (socket, virtio-serial) or, for Xen, a vchan the test opened
// with the backend's own client_init (the peer domain is dom0 itself: Xen
// lets a domain grant pages and bind event channels to itself).
import Foundation
import Glibc
import Host
import XCTest

protocol VchanPeer: AnyObject {
    /// The peer as a descriptor, where it is one (needed for fd passing).
    var fd: Int32? { get }
    func write(_ bytes: [UInt8]) throws
    func readExactly(_ count: Int) throws -> [UInt8]
    /// Everything until EOF.
    func readAll() throws -> [UInt8]
    func close()
}

/// A connected socket.
final class FDPeer: VchanPeer {
    private var socket: Int32
    init(_ fd: Int32) { socket = fd }
    var fd: Int32? { socket >= 0 ? socket : nil }
    func write(_ bytes: [UInt8]) throws { try IO.writeAll(socket, bytes) }
    func readExactly(_ count: Int) throws -> [UInt8] { IO.readExactly(socket, count) }
    func readAll() throws -> [UInt8] { IO.readAll(socket) }
    func close() { if socket >= 0 { Glibc.close(socket); socket = -1 } }
    deinit { close() }
}

/// A vchan client end opened through the backend under test.
final class ChannelPeer: VchanPeer {
    let channel: VchanChannel
    init(_ channel: VchanChannel) { self.channel = channel }
    var fd: Int32? { nil }
    func write(_ bytes: [UInt8]) throws { try channel.send(bytes) }
    func readExactly(_ count: Int) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        try buf.withUnsafeMutableBytes { try channel.recv($0) }
        return buf
    }
    func readAll() throws -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = try buf.withUnsafeMutableBytes { try channel.read($0) }
            if n == 0 { return out }
            out += buf[0..<n]
        }
    }
    func close() { channel.close() }
}
