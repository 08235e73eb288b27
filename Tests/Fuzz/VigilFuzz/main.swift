// The libFuzzer driver of Vigil's input readers (docs/reliability.md, "Fuzzing"). Built only by
// scripts/fuzz.sh (VIGIL_FUZZ=1, -sanitize=fuzzer,address), never by a normal `swift build`.
//
//   vigil-fuzz TARGET [libFuzzer options] [corpus directories or inputs]
//   vigil-fuzz seeds DIRECTORY      writes the generated seeds (Tests/Fuzz/Corpus)
//   vigil-fuzz list                 prints the targets
import Foundation

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// libFuzzer's own `main` (linked in whole) calls this; the driver below is what runs, so it
/// only forwards to the chosen target.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTargets.chosen?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: vigil-fuzz TARGET|seeds DIR|list [libFuzzer options]\n".utf8))
    exit(2)
}
switch arguments[1] {
case "list":
    print(FuzzTargets.all.keys.sorted().joined(separator: "\n"))
    exit(0)
case "seeds":
    guard arguments.count == 3 else { exit(2) }
    do {
        try FuzzSeeds.write(to: URL(fileURLWithPath: arguments[2]))
    } catch {
        FileHandle.standardError.write(Data("seeds: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
default:
    guard let target = FuzzTargets.all[arguments[1]] else {
        FileHandle.standardError.write(
            Data("no target \(arguments[1]); targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8))
        exit(2)
    }
    FuzzTargets.chosen = target
}

// libFuzzer sees the program name and the options after the target's name.
var cArguments: [UnsafeMutablePointer<CChar>?] = ([arguments[0]] + arguments.dropFirst(2)).map { strdup($0) }
cArguments.append(nil)
var argc = CInt(cArguments.count - 1)
let status = cArguments.withUnsafeMutableBufferPointer { buffer in
    var argv = buffer.baseAddress!
    return runDriver(&argc, &argv) { data, size in
        FuzzTargets.chosen?(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
exit(status)
