/* An SSDT the every-feature plan adds from a compiled file: one device with an I/O range. */
DefinitionBlock ("", "SSDT", 2, "HVMPT", "EXTRA", 0x00000001)
{
    Scope (\_SB)
    {
        Device (XTRA)
        {
            Name (_HID, "HVM0002")
            Name (_UID, Zero)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x0520, 0x0520, 0x01, 0x04)
            })
        }
    }
}
