.class public LByLength;
.super Ljava/lang/Object;
.implements Ljava/util/Comparator;

.method public constructor <init>()V
    .registers 1
    invoke-direct {p0}, Ljava/lang/Object;-><init>()V
    return-void
.end method

# shorter first, then alphabetical
.method public compare(Ljava/lang/Object;Ljava/lang/Object;)I
    .registers 5
    check-cast p1, Ljava/lang/String;
    check-cast p2, Ljava/lang/String;
    invoke-virtual {p1}, Ljava/lang/String;->length()I
    move-result v0
    invoke-virtual {p2}, Ljava/lang/String;->length()I
    move-result v1
    sub-int v0, v0, v1
    if-nez v0, :done
    invoke-virtual {p1, p2}, Ljava/lang/String;->compareTo(Ljava/lang/String;)I
    move-result v0
    :done
    return v0
.end method

.method public toString()Ljava/lang/String;
    .registers 2
    const-string v0, "ByLength!"
    return-object v0
.end method
