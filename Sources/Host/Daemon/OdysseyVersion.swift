public enum OdysseyVersion {
    public static let string = "0.1.0"
}
