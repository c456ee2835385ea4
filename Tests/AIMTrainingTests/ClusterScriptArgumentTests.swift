import Foundation
import XCTest

/// The launch scripts refuse what they cannot run, saying why: an option without its value
/// (`--iface --dry-run` took `--dry-run` as the interface and launched for real; `-n` alone
/// stopped with no word), and slurm.sbatch run by hand ("SLURM_NTASKS: unbound variable").
final class ClusterScriptArgumentTests: TrainToolTestCase {
    func testScriptsSayWhatIsMissing() throws {
        let mpirunScript = Self.root.appendingPathComponent("cluster/mpirun.sh").path
        for (args, expect) in [(["-n"], "-n needs a value"), (["--hostfile"], "--hostfile needs a value"),
                               (["-n", "2", "--iface", "--dry-run", "--", "true"], "--iface needs a value")] {
            let r = try run("/bin/bash", [mpirunScript] + args)
            XCTAssertEqual(r.status, 2, r.output)
            XCTAssertTrue(r.output.contains(expect), r.output)
            XCTAssertFalse(r.output.contains("Invalid specification"), "mpirun ran: \(r.output)")
        }
        let dry = try run("/bin/bash", [mpirunScript, "-n", "2", "--dry-run", "--", "true"])
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains("mpirun -n 2"), dry.output)

        let sbatch = Self.root.appendingPathComponent("cluster/slurm.sbatch").path
        let r = try run("/usr/bin/env", ["-u", "SLURM_JOB_ID", "-u", "SLURM_NTASKS", "/bin/bash", sbatch])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("not inside a Slurm job"), r.output)
    }
}
