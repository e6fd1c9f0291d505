# try/catch: typed handlers (the second of two, a superclass, a program's own class), catch-all,
# exceptions thrown by the VM, by `throw` and by a callee.
.class public Lorg/cerebro/demo/Catcher;
.super Ljava/lang/Object;

.method static length([I)I
    .locals 1
    array-length v0, p0
    return v0
.end method

.method public static main([Ljava/lang/String;)V
    .locals 5
    sget-object v0, Ljava/lang/System;->out:Ljava/io/PrintStream;

    # the VM's ArithmeticException, taken by the second of two typed handlers
    const/4 v1, 1
    const/4 v2, 0
    :try1_start
    div-int v3, v1, v2
    :try1_end
    .catch Ljava/lang/NullPointerException; {:try1_start .. :try1_end} :npe1
    .catch Ljava/lang/ArithmeticException; {:try1_start .. :try1_end} :arith1
    goto :part2
    :npe1
    const-string v4, "wrong handler"
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    goto :part2
    :arith1
    move-exception v4
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V

    # a thrown IllegalStateException, caught as a RuntimeException
    :part2
    :try2_start
    new-instance v3, Ljava/lang/IllegalStateException;
    const-string v4, "bad state"
    invoke-direct {v3, v4}, Ljava/lang/IllegalStateException;-><init>(Ljava/lang/String;)V
    throw v3
    :try2_end
    .catch Ljava/lang/RuntimeException; {:try2_start .. :try2_end} :runtime2
    :runtime2
    move-exception v3
    invoke-virtual {v3}, Ljava/lang/Throwable;->getMessage()Ljava/lang/String;
    move-result-object v4
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V

    # an index out of bounds, caught by a catch-all
    const/4 v1, 2
    new-array v3, v1, [I
    const/4 v1, 5
    :try3_start
    aget v4, v3, v1
    :try3_end
    .catchall {:try3_start .. :try3_end} :all3
    goto :part4
    :all3
    const-string v4, "caught by catch-all"
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V

    # a NullPointerException from a callee
    :part4
    const/4 v3, 0
    :try4_start
    invoke-static {v3}, Lorg/cerebro/demo/Catcher;->length([I)I
    :try4_end
    .catch Ljava/lang/NullPointerException; {:try4_start .. :try4_end} :npe4
    goto :part5
    :npe4
    const-string v4, "caught NullPointerException from a callee"
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V

    # the program's own exception class, caught as an Exception
    :part5
    :try5_start
    new-instance v3, Lorg/cerebro/demo/Oops;
    const-string v4, "custom"
    invoke-direct {v3, v4}, Lorg/cerebro/demo/Oops;-><init>(Ljava/lang/String;)V
    throw v3
    :try5_end
    .catch Ljava/lang/Exception; {:try5_start .. :try5_end} :exception5
    :exception5
    move-exception v3
    invoke-virtual {v0, v3}, Ljava/io/PrintStream;->println(Ljava/lang/Object;)V

    const-string v4, "done"
    invoke-virtual {v0, v4}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    return-void
.end method
