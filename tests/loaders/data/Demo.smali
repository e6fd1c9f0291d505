# Hand-assembled equivalent of Demo.java (the reference run by the JDK in the tests).
.class public Lorg/cerebro/demo/Demo;
.super Ljava/lang/Object;

.field static counter:I
.field value:I

.method static constructor <clinit>()V
    .locals 1
    const/4 v0, 5
    sput v0, Lorg/cerebro/demo/Demo;->counter:I
    return-void
.end method

.method public constructor <init>(I)V
    .locals 0
    invoke-direct {p0}, Ljava/lang/Object;-><init>()V
    iput p1, p0, Lorg/cerebro/demo/Demo;->value:I
    return-void
.end method

.method public score()I
    .locals 1
    iget v0, p0, Lorg/cerebro/demo/Demo;->value:I
    mul-int/lit8 v0, v0, 2
    return v0
.end method

.method public static fib(I)I
    .locals 4
    const/4 v0, 0
    const/4 v1, 1
    const/4 v2, 0
    :loop
    if-ge v2, p0, :done
    add-int v3, v0, v1
    move v0, v1
    move v1, v3
    add-int/lit8 v2, v2, 1
    goto :loop
    :done
    return v0
.end method

.method public static name(I)Ljava/lang/String;
    .locals 1
    packed-switch p0, :table
    const-string v0, "many"
    return-object v0
    :one
    const-string v0, "one"
    return-object v0
    :two
    const-string v0, "two"
    return-object v0
    :three
    const-string v0, "three"
    return-object v0
    :table
    .packed-switch 0x1
        :one
        :two
        :three
    .end packed-switch
.end method

.method public static sparse(I)I
    .locals 1
    sparse-switch p0, :table
    const/4 v0, 0
    return v0
    :a
    const/16 v0, 50
    return v0
    :b
    const/4 v0, 1
    return v0
    :c
    const/4 v0, 7
    return v0
    :table
    .sparse-switch
        -0x5 -> :a
        0x64 -> :b
        0x1b58 -> :c
    .end sparse-switch
.end method

.method public static main([Ljava/lang/String;)V
    .locals 10
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;

    new-instance v1, Ljava/lang/StringBuilder;
    invoke-direct {v1}, Ljava/lang/StringBuilder;-><init>()V
    const-string v2, "args="
    invoke-virtual {v1, v2}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    array-length v2, p0
    invoke-virtual {v1, v2}, Ljava/lang/StringBuilder;->append(I)Ljava/lang/StringBuilder;
    invoke-virtual {v1}, Ljava/lang/StringBuilder;->toString()Ljava/lang/String;
    move-result-object v1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V

    const/4 v3, 0
    :argloop
    array-length v2, p0
    if-ge v3, v2, :argdone
    aget-object v1, p0, v3
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    add-int/lit8 v3, v3, 1
    goto :argloop
    :argdone

    const/16 v1, 46
    invoke-static {v1}, Lorg/cerebro/demo/Demo;->fib(I)I
    move-result v1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(I)V
    const/16 v1, 47
    invoke-static {v1}, Lorg/cerebro/demo/Demo;->fib(I)I
    move-result v1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(I)V
    const v1, 0x7fffffff
    add-int/lit8 v1, v1, 1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(I)V

    const-wide/16 v4, 1
    const/16 v1, 40
    shl-long/2addr v4, v1
    const-wide/16 v6, 3
    mul-long/2addr v4, v6
    const-wide/16 v6, 7
    add-long/2addr v4, v6
    invoke-virtual {v0, v4, v5}, Ljava/io/PrintStream;->println(J)V

    const/4 v1, -7
    div-int/lit8 v2, v1, 2
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(I)V
    rem-int/lit8 v2, v1, 2
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(I)V
    shr-int/lit8 v2, v1, 1
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(I)V
    ushr-int/lit8 v2, v1, 28
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(I)V

    const/high16 v1, 0x3f800000
    const/high16 v2, 0x40400000
    div-float/2addr v1, v2
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(F)V
    const-wide v4, 0x4004000000000000L
    const-wide v6, 0x4222a05f20000000L
    mul-double/2addr v4, v6
    invoke-virtual {v0, v4, v5}, Ljava/io/PrintStream;->println(D)V
    const-wide v4, 0x3fb999999999999aL
    const-wide v6, 0x3fc999999999999aL
    add-double/2addr v4, v6
    invoke-virtual {v0, v4, v5}, Ljava/io/PrintStream;->println(D)V

    const-wide v4, 0x400feb851eb851ecL
    double-to-int v1, v4
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(I)V
    const-wide v4, 0x43c158e460913d00L
    neg-double v4, v4
    double-to-long v4, v4
    invoke-virtual {v0, v4, v5}, Ljava/io/PrintStream;->println(J)V
    const/16 v1, 65
    int-to-char v1, v1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(C)V

    const/16 v1, 8
    new-array v1, v1, [I
    fill-array-data v1, :arrdata
    const/4 v2, 0
    const/4 v3, 0
    :sumloop
    array-length v8, v1
    if-ge v3, v8, :sumdone
    aget v8, v1, v3
    mul-int/2addr v8, v8
    add-int/2addr v2, v8
    add-int/lit8 v3, v3, 1
    goto :sumloop
    :sumdone
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(I)V

    const/4 v1, 5
    new-array v1, v1, [I
    const/4 v3, 0
    :sqloop
    array-length v8, v1
    if-ge v3, v8, :sqdone
    mul-int v8, v3, v3
    aput v8, v1, v3
    add-int/lit8 v3, v3, 1
    goto :sqloop
    :sqdone
    const/4 v3, 4
    aget v2, v1, v3
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(I)V

    const/4 v1, 2
    invoke-static {v1}, Lorg/cerebro/demo/Demo;->name(I)Ljava/lang/String;
    move-result-object v1
    const/16 v2, 9
    invoke-static {v2}, Lorg/cerebro/demo/Demo;->name(I)Ljava/lang/String;
    move-result-object v2
    invoke-virtual {v1, v2}, Ljava/lang/String;->concat(Ljava/lang/String;)Ljava/lang/String;
    move-result-object v1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V

    const/16 v1, 7000
    invoke-static {v1}, Lorg/cerebro/demo/Demo;->sparse(I)I
    move-result v1
    const/4 v2, -5
    invoke-static {v2}, Lorg/cerebro/demo/Demo;->sparse(I)I
    move-result v2
    add-int/2addr v1, v2
    const/4 v2, 3
    invoke-static {v2}, Lorg/cerebro/demo/Demo;->sparse(I)I
    move-result v2
    add-int/2addr v1, v2
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(I)V

    sget v1, Lorg/cerebro/demo/Demo;->counter:I
    add-int/lit8 v1, v1, 10
    sput v1, Lorg/cerebro/demo/Demo;->counter:I
    sget v1, Lorg/cerebro/demo/Demo;->counter:I
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(I)V

    new-instance v1, Lorg/cerebro/demo/Demo;
    const/4 v2, 7
    invoke-direct {v1, v2}, Lorg/cerebro/demo/Demo;-><init>(I)V
    new-instance v3, Lorg/cerebro/demo/Big;
    invoke-direct {v3, v2}, Lorg/cerebro/demo/Big;-><init>(I)V
    invoke-virtual {v1}, Lorg/cerebro/demo/Demo;->score()I
    move-result v1
    invoke-virtual {v3}, Lorg/cerebro/demo/Demo;->score()I
    move-result v3
    add-int/2addr v1, v3
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(I)V

    new-instance v1, Ljava/lang/StringBuilder;
    invoke-direct {v1}, Ljava/lang/StringBuilder;-><init>()V
    const-string v2, "pi~"
    invoke-virtual {v1, v2}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    const/4 v2, 3
    invoke-virtual {v1, v2}, Ljava/lang/StringBuilder;->append(I)Ljava/lang/StringBuilder;
    const/16 v2, 46
    invoke-virtual {v1, v2}, Ljava/lang/StringBuilder;->append(C)Ljava/lang/StringBuilder;
    const-wide/16 v4, 14159
    invoke-virtual {v1, v4, v5}, Ljava/lang/StringBuilder;->append(J)Ljava/lang/StringBuilder;
    const/4 v2, 1
    invoke-virtual {v1, v2}, Ljava/lang/StringBuilder;->append(Z)Ljava/lang/StringBuilder;
    invoke-virtual {v1}, Ljava/lang/StringBuilder;->toString()Ljava/lang/String;
    move-result-object v1
    invoke-virtual {v0, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V

    array-length v1, p0
    sub-int v1, v1, v1
    const/16 v2, 10
    div-int v2, v2, v1
    invoke-virtual {v0, v2}, Ljava/io/PrintStream;->println(I)V
    return-void

    :arrdata
    .array-data 4
        3 1 4 1 5 9 2 6
    .end array-data
.end method
