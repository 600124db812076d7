// Every AML opcode and resource descriptor that iasl 20200925 can compile, for the parser,
// encoder and resource codec tests (test/acpi/aml/opcodes.test.ts). Not a real table.
DefinitionBlock ("", "SSDT", 2, "HVMPT", "ALLOPS", 0x00000001)
{
    External (\_SB.EXTM, MethodObj)
    External (\_SB.EXT2, MethodObj)
    Name (INT0, 0x12345678)
    Name (QWD0, 0x123456789ABCDEF0)
    Name (STR0, "hello")
    Name (BUF0, Buffer (0x08) { 0x01, 0x02, 0x03 })
    Name (PKG0, Package (0x03) { One, "two", Package () { 0x03 } })
    Name (VPK0, Package () { Zero, One, 0x02, 0x03 })
    OperationRegion (OPR0, SystemMemory, 0xFED40000, 0x1000)
    Field (OPR0, AnyAcc, Lock, Preserve)
    {
        FLD0,   8,
        Offset (0x10),
        FLD1,   32,
        AccessAs (BufferAcc, AttribBytes (0x04)),
        FLD2,   8,
        AccessAs (ByteAcc, 0x00),
        ,   4,
        FLD3,   4
    }
    OperationRegion (GPOP, GeneralPurposeIo, Zero, 0x10)
    Field (GPOP, ByteAcc, NoLock, Preserve)
    {
        Connection (GpioIo (Exclusive, PullUp, 0x0000, 0x0000, IoRestrictionNone, "\\_SB.GPI0", 0x00, ResourceConsumer, , ) { 0x0012 }),
        GPF0,   1
    }
    Name (GPCN, ResourceTemplate () { GpioIo (Exclusive, PullUp, 0x0000, 0x0000, IoRestrictionNone, "\\_SB.GPI0", 0x00, ResourceConsumer, , ) { 0x0013 } })
    Field (GPOP, ByteAcc, NoLock, Preserve)
    {
        Connection (GPCN),
        GPF1,   1
    }
    IndexField (FLD0, FLD1, ByteAcc, NoLock, WriteAsZeros)
    {
        IDX0,   8
    }
    BankField (OPR0, FLD0, 0x02, ByteAcc, NoLock, WriteAsOnes)
    {
        BNK0,   8
    }
    DataTableRegion (DTR0, "FACP", "", "")
    Mutex (MTX0, 0x03)
    Event (EVT0)
    Alias (INT0, ALI0)
    CreateBitField (BUF0, 0x01, CBT0)
    CreateByteField (BUF0, 0x01, CBY0)
    CreateWordField (BUF0, 0x01, CWD0)
    CreateDWordField (BUF0, 0x01, CDW0)
    CreateQWordField (BUF0, 0x00, CQW0)
    CreateField (BUF0, 0x04, 0x08, CFL0)
    Scope (\_SB)
    {
        Device (DEV0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_CID, Package () { EisaId ("PNP0A03"), "ACPI0001" })
            Name (_ADR, 0x001F0003)
            Name (_UID, "u1")
        }
        ThermalZone (TZ00)
        {
            Method (_TMP, 0, Serialized) { Return (0x0BB8) }
        }
        PowerResource (PWR0, 0x00, 0x0000)
        {
            Method (_STA, 0, NotSerialized) { Return (One) }
            Method (_ON, 0, NotSerialized) { }
            Method (_OFF, 0, NotSerialized) { }
        }
        Processor (CPU0, 0x01, 0x00000810, 0x06) { }
    }
    Method (MTH0, 2, Serialized, 3)
    {
        Name (LOC0, Zero)
        Local0 = (Arg0 + Arg1)
        Store (Subtract (Local0, One), Local1)
        Multiply (Local0, 0x02, Local2)
        Divide (Local2, 0x03, Local3, Local4)
        Local5 = (Local0 << 0x02)
        Local5 = (Local0 >> 0x01)
        Local6 = (Local0 & 0xFF)
        Local6 = (Local0 | 0x100)
        Local6 = (Local0 ^ 0x0F)
        Local6 = NAnd (Local0, 0x0F)
        Local6 = NOr (Local0, 0x0F)
        Local6 = ~Local0
        Local6 = (Local0 % 0x07)
        FindSetLeftBit (Local0, Local7)
        FindSetRightBit (Local0, Local7)
        Local0++
        Local0--
        Concatenate (Local0, "b", Local1)
        Local1 = ToInteger (Local0)
        ToBCD (Local0, Local1)
        FromBCD (Local0, Local1)
        ConcatenateResTemplate (ResourceTemplate () { IRQNoFlags () {1} }, ResourceTemplate () { IRQNoFlags () {2} }, Local1)
        If (((Local0 == One) && (Local1 != Zero)))
        {
            Local2 = One
        }
        ElseIf (((Local0 > 0x02) || (Local0 < 0x03)))
        {
            Local2 = 0x02
        }
        Else
        {
            Local2 = (Local0 >= 0x04)
            Local2 = (Local0 <= 0x05)
            Local2 = !Local0
        }
        While ((Local0 < 0x10))
        {
            Local0++
            If ((Local0 == 0x05)) { Continue }
            If ((Local0 == 0x08)) { Break }
        }
        Local1 = SizeOf (STR0)
        Local1 = ObjectType (INT0)
        Local1 = RefOf (INT0)
        Local1 = DerefOf (Local1)
        Local1 = DerefOf (PKG0 [One])
        Store (Index (PKG0, Zero), Local1)
        Local1 = Match (PKG0, MEQ, One, MTR, Zero, Zero)
        Local1 = ToBuffer (INT0)
        Local1 = ToDecimalString (INT0)
        Local1 = ToHexString (INT0)
        Local1 = ToInteger ("0x10")
        Local1 = ToString (BUF0, Ones)
        Local1 = ToBCD (0x10)
        Local1 = FromBCD (0x10)
        Local1 = Mid (STR0, One, 0x02)
        CopyObject (INT0, LOC0)
        If (CondRefOf (\_SB.DEV0, Local2)) { Notify (\_SB.DEV0, 0x80) }
        Acquire (MTX0, 0xFFFF)
        Release (MTX0)
        Signal (EVT0)
        Wait (EVT0, 0x10)
        Reset (EVT0)
        Sleep (0x0A)
        Stall (0x0A)
        Local1 = Timer
        Local1 = Revision
        Debug = "dbg"
        Noop
        BreakPoint
        Load (OPR0, Local3)
        Unload (Local3)
        Local4 = LoadTable ("OEM1", "", "", "\\", "\\MTH1", Zero)
        Fatal (0x01, 0x00000002, 0x03)
        Local5 = Package (Local0) { One, 0x02 }
        \_SB.EXTM ()
        \_SB.EXT2 (Local0, 0x02)
        MTH1 (One)
        Return (Package () { One })
    }
    Method (MTH1, 1, NotSerialized)
    {
        Return (MTH0 (Arg0, One))
    }
    Name (RES0, ResourceTemplate ()
    {
        IRQ (Level, ActiveLow, Shared, ) {3,4,5}
        IRQNoFlags () {7}
        DMA (TypeF, BusMaster, Transfer8_16, ) {1,3}
        StartDependentFn (0x01, 0x02)
        {
            IO (Decode10, 0x0300, 0x0310, 0x08, 0x04, )
        }
        StartDependentFnNoPri ()
        {
            FixedIO (0x0060, 0x01, )
        }
        EndDependentFn ()
        FixedDMA (0x0005, 0x0003, Width32bit, )
        VendorShort () { 0x11, 0x22, 0x33 }
        Memory24 (ReadOnly, 0x0010, 0x0020, 0x0001, 0x0004, )
        Memory32 (ReadWrite, 0x10000000, 0x20000000, 0x00001000, 0x00100000, )
        Memory32Fixed (ReadOnly, 0xFEC00000, 0x00001000, )
        Register (SystemMemory, 0x20, 0x00, 0x00000000FED00000, 0x03, )
        VendorLong () { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12 }
        WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0x0000, 0x0000, 0x00FF, 0x0000, 0x0100, , , )
        WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300, , , , TypeStatic, DenseTranslation)
        WordSpace (0xC0, ResourceConsumer, SubDecode, MinNotFixed, MaxNotFixed, 0x5A, 0x0000, 0x0010, 0x0020, 0x0000, 0x0011, , , )
        DWordIO (ResourceConsumer, MinNotFixed, MaxNotFixed, SubDecode, ISAOnlyRanges, 0x00000000, 0x00001000, 0x00001FFF, 0x00000000, 0x00001000, 0x01, "\\_SB.PCI0", , TypeTranslation, SparseTranslation)
        DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Prefetchable, ReadWrite, 0x00000000, 0x80000000, 0xDFFFFFFF, 0x00000000, 0x60000000, , , , AddressRangeNVS, TypeStatic)
        DWordSpace (0xC1, ResourceConsumer, PosDecode, MinFixed, MaxFixed, 0x00, 0x00000000, 0x00000100, 0x000001FF, 0x00000000, 0x00000100, , , )
        QWordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, NonISAOnlyRanges, 0x0000000000000000, 0x0000000000002000, 0x0000000000002FFF, 0x0000000000000000, 0x0000000000001000, , , , TypeStatic, DenseTranslation)
        QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, WriteCombining, ReadOnly, 0x0000000000000000, 0x0000008000000000, 0x000000FFFFFFFFFF, 0x0000000000000000, 0x0000008000000000, , , , AddressRangeACPI, TypeTranslation)
        QWordSpace (0xC2, ResourceConsumer, PosDecode, MinFixed, MaxFixed, 0x00, 0x0000000000000000, 0x0000000000000010, 0x000000000000001F, 0x0000000000000000, 0x0000000000000010, , , )
        ExtendedIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0x0000000000000000, 0x0000000000003000, 0x0000000000003FFF, 0x0000000000000000, 0x0000000000001000, 0x0000000000000000, , TypeStatic, DenseTranslation)
        ExtendedMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite, 0x0000000000000000, 0x0000000100000000, 0x00000001FFFFFFFF, 0x0000000000000000, 0x0000000100000000, 0x0000000000000007, , AddressRangeReserved, TypeStatic)
        ExtendedSpace (0xC3, ResourceConsumer, PosDecode, MinFixed, MaxFixed, 0x00, 0x0000000000000000, 0x0000000000000000, 0x00000000000000FF, 0x0000000000000000, 0x0000000000000100, 0x0000000000000000, )
        Interrupt (ResourceConsumer, Edge, ActiveHigh, SharedAndWake, 0x02, "\\_SB.GSI0", ) { 0x00000010, 0x00000011 }
        Interrupt (ResourceProducer, Level, ActiveLow, Exclusive, , , ) { 0x00000009 }
        GpioInt (Edge, ActiveBoth, ExclusiveAndWake, PullDown, 0x0064, "\\_SB.GPI0", 0x00, ResourceConsumer, , RawDataBuffer (0x02) { 0xAA, 0xBB }) { 0x0002 }
        GpioIo (Shared, PullNone, 0x0000, 0x0190, IoRestrictionOutputOnly, "\\_SB.GPI0", 0x00, ResourceConsumer, , ) { 0x0007 }
        I2cSerialBusV2 (0x0050, ControllerInitiated, 0x00061A80, AddressingMode10Bit, "\\_SB.I2C0", 0x00, ResourceConsumer, , Shared, )
        SpiSerialBusV2 (0x0001, PolarityLow, FourWireMode, 0x08, ControllerInitiated, 0x00989680, ClockPolarityHigh, ClockPhaseSecond, "\\_SB.SPI0", 0x00, ResourceConsumer, , Exclusive, )
        UartSerialBusV2 (0x0001C200, DataBitsEight, StopBitsOne, 0xC0, LittleEndian, ParityTypeNone, FlowControlHardware, 0x0040, 0x0040, "\\_SB.URT0", 0x00, ResourceConsumer, , Exclusive, )
        PinFunction (Exclusive, PullUp, 0x0005, "\\_SB.GPI0", 0x00, ResourceConsumer, , ) { 0x0001, 0x0002 }
        PinConfig (Exclusive, 0x01, 0x00002710, "\\_SB.GPI0", 0x00, ResourceConsumer, , ) { 0x0003 }
        PinGroup ("group0", ResourceProducer, , ) { 0x0004, 0x0005 }
        PinGroupFunction (Exclusive, 0x0006, "\\_SB.GPI0", 0x00, "group0", ResourceConsumer, , )
        PinGroupConfig (Exclusive, 0x02, 0x00000001, "\\_SB.GPI0", 0x00, "group0", ResourceConsumer, , )
    })
}
