import Kiln
import Testing

/// Numbers from a user's file or flag are converted with a check: a bad one is a sentence naming the
/// file and the position, never a trap.
@Suite struct HostileInputTests {
    @Test(arguments: [Float.nan, .infinity, -.infinity, 1e30, -1, 2.5, 2_147_483_648])
    func aLabelThatIsNoClassIndexIsAnError(label: Float) {
        #expect {
            try ClassLabels.indices([0, 3, label], file: "labels.npy")
        } throws: { error in
            guard let e = error as? KilnError, case let .invalidLabel(file, index, _) = e else { return false }
            return file == "labels.npy" && index == 2 && "\(e)".contains("labels.npy") && "\(e)".contains("position 2")
        }
    }

    @Test func wholeLabelsAreIndices() throws {
        #expect(try ClassLabels.indices([0, 9, 2_147_483_520], file: "l.npy") == [0, 9, 2_147_483_520])
    }
}
