.class public LStrs;
.super Ljava/lang/Object;

.method static say(Ljava/lang/Object;)V
    .registers 2
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-virtual {v0, p0}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V
    return-void
.end method

.method static sayI(I)V
    .registers 2
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-virtual {v0, p0}, Ljava/io/PrintStream;->println(I)V
    return-void
.end method

.method public static main([Ljava/lang/String;)V
    .registers 10
    # StringBuilder: append of each kind, insert, reverse, setCharAt, deleteCharAt
    new-instance v0, Ljava/lang/StringBuilder;
    const-string v1, "ab"
    invoke-direct {v0, v1}, Ljava/lang/StringBuilder;-><init>(Ljava/lang/String;)V
    const/4 v1, 7
    invoke-virtual {v0, v1}, Ljava/lang/StringBuilder;->append(I)Ljava/lang/StringBuilder;
    const-wide v2, 0x3ff8000000000000L
    invoke-virtual {v0, v2, v3}, Ljava/lang/StringBuilder;->append(D)Ljava/lang/StringBuilder;
    const/16 v1, 0x7a
    invoke-virtual {v0, v1}, Ljava/lang/StringBuilder;->append(C)Ljava/lang/StringBuilder;
    const/4 v1, 1
    invoke-virtual {v0, v1}, Ljava/lang/StringBuilder;->append(Z)Ljava/lang/StringBuilder;
    const-wide v2, -5000000000L
    invoke-virtual {v0, v2, v3}, Ljava/lang/StringBuilder;->append(J)Ljava/lang/StringBuilder;
    const/4 v1, 0
    const-string v2, "<"
    invoke-virtual {v0, v1, v2}, Ljava/lang/StringBuilder;->insert(ILjava/lang/String;)Ljava/lang/StringBuilder;
    invoke-static {v0}, LStrs;->say(Ljava/lang/Object;)V
    invoke-virtual {v0}, Ljava/lang/StringBuilder;->reverse()Ljava/lang/StringBuilder;
    const/4 v1, 0
    invoke-virtual {v0, v1}, Ljava/lang/StringBuilder;->deleteCharAt(I)Ljava/lang/StringBuilder;
    const/16 v2, 0x5f
    invoke-virtual {v0, v1, v2}, Ljava/lang/StringBuilder;->setCharAt(IC)V
    invoke-virtual {v0}, Ljava/lang/StringBuilder;->toString()Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, LStrs;->say(Ljava/lang/Object;)V
    invoke-virtual {v0}, Ljava/lang/StringBuilder;->length()I
    move-result v1
    invoke-static {v1}, LStrs;->sayI(I)V

    # String methods
    const-string v4, "  Hello, World, Java  "
    invoke-virtual {v4}, Ljava/lang/String;->trim()Ljava/lang/String;
    move-result-object v4
    invoke-virtual {v4}, Ljava/lang/String;->toUpperCase()Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, LStrs;->say(Ljava/lang/Object;)V
    const-string v1, ", "
    invoke-virtual {v4, v1}, Ljava/lang/String;->split(Ljava/lang/String;)[Ljava/lang/String;
    move-result-object v5
    array-length v1, v5
    invoke-static {v1}, LStrs;->sayI(I)V
    const/4 v1, 2
    aget-object v1, v5, v1
    invoke-static {v1}, LStrs;->say(Ljava/lang/Object;)V
    const-string v1, "o"
    invoke-virtual {v4, v1}, Ljava/lang/String;->indexOf(Ljava/lang/String;)I
    move-result v2
    invoke-static {v2}, LStrs;->sayI(I)V
    invoke-virtual {v4, v1}, Ljava/lang/String;->lastIndexOf(Ljava/lang/String;)I
    move-result v2
    invoke-static {v2}, LStrs;->sayI(I)V
    const/4 v1, 7
    const/16 v2, 12
    invoke-virtual {v4, v1, v2}, Ljava/lang/String;->substring(II)Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, LStrs;->say(Ljava/lang/Object;)V
    const-string v2, "world"
    invoke-virtual {v1, v2}, Ljava/lang/String;->equalsIgnoreCase(Ljava/lang/String;)Z
    move-result v3
    invoke-static {v3}, LStrs;->sayI(I)V
    invoke-virtual {v1, v2}, Ljava/lang/String;->compareTo(Ljava/lang/String;)I
    move-result v3
    invoke-static {v3}, LStrs;->sayI(I)V
    invoke-virtual {v4}, Ljava/lang/String;->hashCode()I
    move-result v3
    invoke-static {v3}, LStrs;->sayI(I)V
    const/16 v1, 0x6c
    const/16 v2, 0x4c
    invoke-virtual {v4, v1, v2}, Ljava/lang/String;->replace(CC)Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, LStrs;->say(Ljava/lang/Object;)V
    const-string v1, "a1b22c333"
    const-string v2, "[0-9]+"
    const-string v3, "#"
    invoke-virtual {v1, v2, v3}, Ljava/lang/String;->replaceAll(Ljava/lang/String;Ljava/lang/String;)Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, LStrs;->say(Ljava/lang/Object;)V
    const-string v1, "a,b,,c,,"
    const-string v2, ","
    invoke-virtual {v1, v2}, Ljava/lang/String;->split(Ljava/lang/String;)[Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, Ljava/util/Arrays;->toString([Ljava/lang/Object;)Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, LStrs;->say(Ljava/lang/Object;)V

    # String.format
    const-string v1, "%5d|%-6s|%.3f|%x|%08.2f|%,d|%c|%b|%10.4e|%%|%s%n"
    const/16 v2, 10
    new-array v2, v2, [Ljava/lang/Object;
    const/16 v3, 42
    invoke-static {v3}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v3
    const/4 v6, 0
    aput-object v3, v2, v6
    const-string v3, "ab"
    const/4 v6, 1
    aput-object v3, v2, v6
    const-wide v7, 0x400921fb54442d18L
    invoke-static {v7, v8}, Ljava/lang/Double;->valueOf(D)Ljava/lang/Double;
    move-result-object v3
    const/4 v6, 2
    aput-object v3, v2, v6
    const/16 v3, 255
    invoke-static {v3}, Ljava/lang/Integer;->valueOf(I)Ljava/lang/Integer;
    move-result-object v3
    const/4 v6, 3
    aput-object v3, v2, v6
    const-wide v7, -0x3ff3000000000000L
    invoke-static {v7, v8}, Ljava/lang/Double;->valueOf(D)Ljava/lang/Double;
    move-result-object v3
    const/4 v6, 4
    aput-object v3, v2, v6
    const-wide v7, 1234567890123L
    invoke-static {v7, v8}, Ljava/lang/Long;->valueOf(J)Ljava/lang/Long;
    move-result-object v3
    const/4 v6, 5
    aput-object v3, v2, v6
    const/16 v3, 0x51
    invoke-static {v3}, Ljava/lang/Character;->valueOf(C)Ljava/lang/Character;
    move-result-object v3
    const/4 v6, 6
    aput-object v3, v2, v6
    const/4 v3, 0
    invoke-static {v3}, Ljava/lang/Boolean;->valueOf(Z)Ljava/lang/Boolean;
    move-result-object v3
    const/4 v6, 7
    aput-object v3, v2, v6
    const-wide v7, 0x40fe240c9fbe76c9L
    invoke-static {v7, v8}, Ljava/lang/Double;->valueOf(D)Ljava/lang/Double;
    move-result-object v3
    const/16 v6, 8
    aput-object v3, v2, v6
    const/4 v3, 0
    const/16 v6, 9
    aput-object v3, v2, v6
    invoke-static {v1, v2}, Ljava/lang/String;->format(Ljava/lang/String;[Ljava/lang/Object;)Ljava/lang/String;
    move-result-object v1
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->print(Ljava/lang/String;)V

    # parsing and toString
    const-string v1, "-2147483648"
    invoke-static {v1}, Ljava/lang/Integer;->parseInt(Ljava/lang/String;)I
    move-result v1
    invoke-static {v1}, LStrs;->sayI(I)V
    invoke-static {v1}, Ljava/lang/Integer;->toHexString(I)Ljava/lang/String;
    move-result-object v2
    invoke-static {v2}, LStrs;->say(Ljava/lang/Object;)V
    invoke-static {v1}, Ljava/lang/Integer;->toBinaryString(I)Ljava/lang/String;
    move-result-object v2
    invoke-static {v2}, LStrs;->say(Ljava/lang/Object;)V
    const-string v1, "ff"
    const/16 v2, 16
    invoke-static {v1, v2}, Ljava/lang/Integer;->parseInt(Ljava/lang/String;I)I
    move-result v1
    invoke-static {v1}, LStrs;->sayI(I)V
    const-string v1, "9223372036854775807"
    invoke-static {v1}, Ljava/lang/Long;->parseLong(Ljava/lang/String;)J
    move-result-wide v1
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;
    invoke-virtual {v0, v1, v2}, Ljava/io/PrintStream;->println(J)V
    const-string v1, " 1.5e-7 "
    invoke-static {v1}, Ljava/lang/Double;->parseDouble(Ljava/lang/String;)D
    move-result-wide v1
    invoke-virtual {v0, v1, v2}, Ljava/io/PrintStream;->println(D)V
    const-wide v3, 0x4008000000000000L
    invoke-static {v1, v2, v3, v4}, Ljava/lang/Math;->pow(DD)D
    move-result-wide v1
    invoke-virtual {v0, v1, v2}, Ljava/io/PrintStream;->println(D)V
    const-wide v1, 0x4004000000000000L
    invoke-static {v1, v2}, Ljava/lang/Math;->round(D)J
    move-result-wide v1
    invoke-virtual {v0, v1, v2}, Ljava/io/PrintStream;->println(J)V
    const-wide v1, -0x3ffc000000000000L
    invoke-static {v1, v2}, Ljava/lang/Math;->floor(D)D
    move-result-wide v1
    invoke-virtual {v0, v1, v2}, Ljava/io/PrintStream;->println(D)V
    # bytes
    const-string v1, "h\u00e9!"
    sget-object v2, Ljava/nio/charset/StandardCharsets;->UTF_8:Ljava/nio/charset/Charset;
    invoke-virtual {v1, v2}, Ljava/lang/String;->getBytes(Ljava/nio/charset/Charset;)[B
    move-result-object v3
    invoke-static {v3}, Ljava/util/Arrays;->toString([B)Ljava/lang/String;
    move-result-object v4
    invoke-static {v4}, LStrs;->say(Ljava/lang/Object;)V
    new-instance v4, Ljava/lang/String;
    invoke-direct {v4, v3, v2}, Ljava/lang/String;-><init>([BLjava/nio/charset/Charset;)V
    invoke-virtual {v4}, Ljava/lang/String;->length()I
    move-result v5
    invoke-static {v5}, LStrs;->sayI(I)V
    # arraycopy
    const/4 v1, 5
    new-array v1, v1, [I
    const/4 v2, 0
    const/16 v5, 9
    aput v5, v1, v2
    const/4 v5, 1
    const/4 v6, 3
    invoke-static {v1, v2, v1, v5, v6}, Ljava/lang/System;->arraycopy(Ljava/lang/Object;ILjava/lang/Object;II)V
    invoke-static {v1}, Ljava/util/Arrays;->toString([I)Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, LStrs;->say(Ljava/lang/Object;)V
    :try_s
    const-string v1, "12x"
    invoke-static {v1}, Ljava/lang/Integer;->parseInt(Ljava/lang/String;)I
    :try_e
    .catch Ljava/lang/NumberFormatException; {:try_s .. :try_e} :bad
    return-void
    :bad
    move-exception v1
    invoke-static {v1}, LStrs;->say(Ljava/lang/Object;)V
    return-void
.end method
