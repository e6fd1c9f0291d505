# A program's own exception class (for Catcher).
.class public Lorg/cerebro/demo/Oops;
.super Ljava/lang/Exception;

.method public constructor <init>(Ljava/lang/String;)V
    .locals 0
    invoke-direct {p0, p1}, Ljava/lang/Exception;-><init>(Ljava/lang/String;)V
    return-void
.end method
